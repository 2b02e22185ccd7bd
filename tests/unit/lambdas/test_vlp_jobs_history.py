"""Jobs (the Standard machine, POST /v1/jobs) keep no user data in the execution history (issue 12 item 4,
vlp.pipeline.stored): a job runs through the documented definition over the real handlers, and no state's input or
output, nor the execution's input or output, holds the caller's text, labels, history, label template, transcript,
keywords, plan, answer, tags, prompt or detection labels; the job's result, read back by GET /v1/jobs/{id}, holds
them all. Express executions (POST /v1/analyze) keep their data inline and write no step documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from vlp_media import image_bytes, wav_bytes
from vlp_testkit import ANON, BUCKET, api_event, model_error, put, response_json

UPLOAD = f"uploads/{ANON}/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.png"
AUDIO = f"uploads/{ANON}/7d3e1a52-1f9e-4c1e-8a43-6c1f0e2d9b10/audio.wav"
# distinctive strings: a hit anywhere in the history is a leak
TEXT = "outline the dog near the Zanzibar-okapi-4417 fountain"
LABELS = ["quokka-7731 plush", "vermilion-teapot-5520"]
HISTORY = [
    {"role": "user", "text": "Is the Kilimanjaro-lynx-2208 poster on the wall?"},
    {"role": "assistant", "text": "Yes, the Brachiosaurus-6619 one is framed."},
]
TEMPLATE = "a Mauretania-heron-3390 snapshot of {}"
TRANSCRIPT = "outline the dog beside the Ouagadougou-marmot-8842"  # what the ASR double answers
ANSWER = "A Xylophone-gecko-1175 sits on the red square."
PLAN = "1. Study the Quetzal-boulder-9901 outline"
TAG_LABELS = ["Tasmania-wombat-3104", "Patagonia-ibis-6625"]


def _submit(body: dict[str, Any], lambda_context) -> str:
    from vlp.handlers import jobs

    response = jobs.handler(api_event(body, path="/v1/jobs"), lambda_context)
    assert response["statusCode"] == 202, response["body"]
    return response_json(response)["job_id"]


def _get(job_id: str, lambda_context) -> dict[str, Any]:
    from vlp.handlers import jobs

    response = jobs.handler(
        api_event(method="GET", path=f"/v1/jobs/{job_id}", path_parameters={"id": job_id}), lambda_context
    )
    assert response["statusCode"] == 200, response["body"]
    return response_json(response)


def _history_text(pipeline) -> str:
    """Everything a Standard execution keeps: its input, every state's input and output, its output or error."""
    execution = next(iter(pipeline.executions.values()))
    assert pipeline.jobs_runner.history, "the job ran on the Standard machine"
    kept = [execution["input"], pipeline.jobs_runner.history, execution.get("output"), execution.get("cause")]
    return json.dumps(kept, ensure_ascii=False)


def _leaks(kept: str, secrets: list[str]) -> list[str]:
    escaped = {secret: json.dumps(secret, ensure_ascii=False)[1:-1] for secret in secrets}
    return [secret for secret in secrets if secret in kept or escaped[secret] in kept]


def test_a_segment_job_with_audio_history_and_detail_keeps_no_user_data_in_its_history(
    pipeline, models, s3, lambda_context
):
    put(s3, UPLOAD, image_bytes(64, 48), "image/png")
    put(s3, AUDIO, wav_bytes(1.0), "audio/wav")
    models.queue("asr", {"text": TRANSCRIPT, "language": "en", "duration": 1.0, "segments": [], "model": "large-v3"})
    models.queue("vlm", [{"generated_text": f" {ANSWER}<end_of_utterance>"}])
    models.queue("llm", [{"generated_text": PLAN}])
    body = {
        "image_key": UPLOAD,
        "audio_key": AUDIO,
        "text": TEXT,
        "labels": LABELS,
        "history": HISTORY,
        "task": "segment",
        "options": {"detail": True, "label_template": TEMPLATE},
    }
    job_id = _submit(body, lambda_context)
    assert "Segment" in pipeline.jobs_runner.visited and "Plan" in pipeline.jobs_runner.visited

    secrets = [TEXT, *LABELS, *(turn["text"] for turn in HISTORY), TEMPLATE, TRANSCRIPT, ANSWER, "Quetzal-boulder"]
    kept = _history_text(pipeline)
    assert _leaks(kept, secrets) == []
    # ... and only ids and keys started it: the request is in S3, under the job's own prefix
    started = pipeline.inputs[0]
    assert set(started) == {"request_id", "caller", "api_request_id", "received_at_ms", "source", "stored"}
    assert started["stored"] == f"inputs/{ANON}/{job_id}/request.json"
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=started["stored"])["Body"].read())["request"]["text"] == TEXT
    # the Choice states still found what they read: the route, the task, the audio, options.detail
    route_input = next(entry["input"] for entry in pipeline.jobs_runner.history if entry["state"] == "Route")
    assert route_input["understand"]["route"] == "segment" and route_input["options"]["detail"] is True
    execution = next(iter(pipeline.executions.values()))
    assert json.loads(execution["output"]) == {
        "request_id": job_id,
        "result_key": f"results/{ANON}/{job_id}/result.json",
    }

    # the job's result, read from S3, holds everything
    view = _get(job_id, lambda_context)
    assert view["status"] == "succeeded"
    result = view["result"]
    assert result["answer"] == ANSWER and result["plan"] == [PLAN.removeprefix("1. ")]
    assert result["transcript"]["text"] == TRANSCRIPT
    assert [detection["label"] for detection in result["detections"]] == LABELS
    assert all(detection["mask"]["url"].startswith("https://") for detection in result["detections"])
    vlm_prompt = models.requests("vlm")[0]["inputs"]
    assert HISTORY[0]["text"] in vlm_prompt and TEXT in vlm_prompt and TRANSCRIPT in vlm_prompt
    assert models.requests("grounded_sam")[0]["prompts"] == LABELS
    # every step's stored document lies under the job's own prefix
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"inputs/{ANON}/{job_id}/steps/")["Contents"]
    assert {item["Key"].rsplit("/", 1)[1] for item in listed} >= {
        "validate.json",
        "transcribe.json",
        "understand.json",
        "plan.json",
        "answer.json",
        "segment.json",
    }


@pytest.mark.parametrize("task", ["tag", "prompt"])
def test_tag_and_prompt_jobs_keep_their_results_out_of_the_history(pipeline, models, s3, lambda_context, task):
    models.queue(
        "clip_interrogator",
        {
            "prompt": "a Hokkaido-pangolin-4471 painting",
            "caption": "a Reykjavik-tapir-5038 caption",
            "mode": "fast",
            "flavors": ["Samarkand-narwhal-7719"],
            "model": "ViT-L-14/openai",
            "caption_model": "blip-test",
        },
    )
    put(s3, UPLOAD, image_bytes(64, 48), "image/png")
    body: dict[str, Any] = {"image_key": UPLOAD, "task": task}
    if task == "tag":
        body |= {"labels": TAG_LABELS, "options": {"label_template": TEMPLATE}}
    job_id = _submit(body, lambda_context)
    secrets = [*TAG_LABELS, TEMPLATE] if task == "tag" else ["Hokkaido-pangolin", "Reykjavik-tapir", "Samarkand"]
    assert _leaks(_history_text(pipeline), secrets) == []
    result = _get(job_id, lambda_context)["result"]
    if task == "tag":
        assert [tag["label"] for tag in result["tags"]] == TAG_LABELS
        assert models.requests("clip_tagging")[0]["prompt_template"] == TEMPLATE
    else:
        assert result["prompt"]["prompt"] == "a Hokkaido-pangolin-4471 painting"
        assert result["prompt"]["flavors"] == ["Samarkand-narwhal-7719"]


def test_a_failed_jobs_cause_does_not_quote_the_users_text(pipeline, models, s3, lambda_context):
    """A model that echoes the input in its error message: the Fail state's Cause (kept in the history) has the
    user's text taken out; the caller still gets the code."""
    put(s3, UPLOAD, image_bytes(64, 48), "image/png")
    echo = {"error": {"code": "MODEL_REJECTED_INPUT", "message": f"cannot read '{TEXT}'", "status": 422}}
    models.queue("vlm", model_error(422, echo))
    job_id = _submit({"image_key": UPLOAD, "text": TEXT, "task": "describe"}, lambda_context)
    execution = next(iter(pipeline.executions.values()))
    assert execution["status"] == "FAILED"
    assert _leaks(_history_text(pipeline), [TEXT]) == []
    assert "[redacted]" in execution["cause"]
    view = _get(job_id, lambda_context)
    assert view["status"] == "failed" and view["error"]["code"] == "MODEL_REJECTED_INPUT"


def test_an_expired_job_result_is_job_not_found(pipeline, models, s3, lambda_context):
    put(s3, UPLOAD, image_bytes(64, 48), "image/png")
    job_id = _submit({"image_key": UPLOAD, "task": "describe"}, lambda_context)
    s3.delete_object(Bucket=BUCKET, Key=f"results/{ANON}/{job_id}/result.json")  # the bucket's lifecycle
    from vlp.handlers import jobs

    response = jobs.handler(api_event(method="GET", path_parameters={"id": job_id}), lambda_context)
    assert response["statusCode"] == 404 and response_json(response)["error"]["code"] == "JOB_NOT_FOUND"


def test_express_executions_keep_their_data_inline_and_store_no_step_documents(pipeline, models, s3, lambda_context):
    from vlp.handlers import analyze

    put(s3, UPLOAD, image_bytes(64, 48), "image/png")
    response = analyze.handler(api_event({"image_key": UPLOAD, "text": TEXT, "task": "describe"}), lambda_context)
    assert response["statusCode"] == 200, response["body"]
    assert "stored" not in pipeline.inputs[0] and pipeline.inputs[0]["request"]["text"] == TEXT
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert not [key for key in keys if "/steps/" in key or key.endswith(("request.json", "result.json"))]


def test_split_and_merge_are_inverse_and_a_new_steps_fields_are_stored():
    """The allow-list: a StepResult subclass without its own inline_fields keeps only the common fields inline."""
    from typing import Literal

    from vlp.pipeline import stored
    from vlp.pipeline.models import AnswerResult, PlanResult, StepResult

    class NewResult(StepResult):
        step: Literal["brand-new"] = "brand-new"
        caption: str | None = None
        output_key: str | None = None

    new = NewResult(caption="Galapagos-vole-2291", output_key="results/x/y/z.png", elapsed_ms=3.0)
    inline, kept = stored.split(new)
    assert "Galapagos" not in json.dumps(inline) and "output_key" not in inline
    assert kept == {"caption": "Galapagos-vole-2291", "output_key": new.output_key, "warnings": []}
    assert NewResult.model_validate(stored.merge(inline, kept)) == new
    answer = AnswerResult(answer=ANSWER, plan=PlanResult(steps=[PLAN]), history_turns=2)
    inline, kept = stored.split(answer)
    assert inline["plan"]["step"] == "plan" and inline["history_turns"] == 2 and PLAN not in json.dumps(inline)
    assert AnswerResult.model_validate(stored.merge(inline, kept)) == answer


def test_a_job_whose_upload_is_missing_fails_with_the_key_named_and_no_text_kept(pipeline, models, lambda_context):
    """Redaction takes the caller's words out, not the S3 keys this API issued (UPLOAD_NOT_FOUND names them)."""
    job_id = _submit({"image_key": UPLOAD, "text": TEXT, "task": "describe"}, lambda_context)
    view = _get(job_id, lambda_context)
    assert view["status"] == "failed" and view["error"]["code"] == "UPLOAD_NOT_FOUND"
    assert UPLOAD in view["error"]["message"]
    assert _leaks(_history_text(pipeline), [TEXT]) == []


def test_a_restyle_job_keeps_its_style_prompt_description_and_prompts_out_of_the_history(
    pipeline, models, s3, lambda_context
):
    """The restyle route's steps (interrogate, restyle) were added through the registry with no code here: their
    results' own fields are stored by default."""
    put(s3, UPLOAD, image_bytes(64, 48), "image/png")
    style, description, negative = "in the Okavango-puffin-5813 manner", "a Lisbon-walrus-2740 scene", "Oslo-yak-9035"
    body = {
        "image_key": UPLOAD,
        "task": "restyle",
        "style_prompt": style,
        "prompt": description,
        "options": {"negative_prompt": negative},
    }
    job_id = _submit(body, lambda_context)
    assert "Restyle" in pipeline.jobs_runner.visited
    assert _leaks(_history_text(pipeline), [style, description, negative, "Okavango", "Lisbon-walrus", "Oslo"]) == []
    restyle = _get(job_id, lambda_context)["result"]["restyle"]
    assert restyle["prompt"] == f"{style}, {description}" and negative in restyle["negative_prompt"]


def test_a_transient_s3_error_writing_a_jobs_result_is_retried(pipeline, models, s3, lambda_context, monkeypatch):
    """assemble writes a job's result document: S3 throttling there (after botocore's own attempts) is retried by
    the state machine, not a failed job whose models have all answered."""
    from vlp.errors import DependencyError
    from vlp.pipeline import storage

    write = storage.write
    failures: list[str] = []

    def throttled_once(s3_client: Any, bucket: str, key: str, *args: Any, **kwargs: Any) -> None:
        if key.endswith("/result.json") and not failures:
            failures.append(key)
            raise DependencyError("S3 is unavailable (SlowDown).")
        write(s3_client, bucket, key, *args, **kwargs)

    monkeypatch.setattr(storage, "write", throttled_once)
    put(s3, UPLOAD, image_bytes(64, 48), "image/png")
    models.queue("vlm", [{"generated_text": f" {ANSWER}<end_of_utterance>"}])
    job_id = _submit({"image_key": UPLOAD, "text": TEXT, "task": "describe"}, lambda_context)
    assert failures == [f"results/{ANON}/{job_id}/result.json"]
    assert pipeline.jobs_runner.retries.get("Assemble") == 1
    view = _get(job_id, lambda_context)
    assert view["status"] == "succeeded" and view["result"]["answer"] == ANSWER
