"""The pipeline: every step through the state machine definition published in docs/pipeline.md, run in-process
over the real handlers (moto S3, a SageMaker double shaped by docs/model-contracts.md)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image
from vlp.api.responses import AnalyzeResult, JobStatus
from vlp.errors import ModelRetryableError
from vlp_media import image_bytes, rle_from_mask, wav_bytes
from vlp_testkit import ANON, BUCKET, api_event, client_error, model_error, put, response_json

UPLOAD = f"uploads/{ANON}/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg"
AUDIO = f"uploads/{ANON}/7d3e1a52-1f9e-4c1e-8a43-6c1f0e2d9b10/audio.wav"


def analyze(body, lambda_context):
    from vlp.handlers import analyze as handler

    response = handler.handler(api_event(body), lambda_context)
    return response["statusCode"], response_json(response)


def inline(width=64, height=48, **kwargs) -> str:
    return base64.b64encode(image_bytes(width, height, **kwargs)).decode()


def get_object(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_auto_describe_without_text(pipeline, models, s3, lambda_context):
    status, body = analyze({"image_base64": inline()}, lambda_context)
    assert status == 200, body
    result = AnalyzeResult.model_validate(body)
    assert result.task == "describe" and result.answer == "A red square." and result.intent is None
    assert [call["role"] for call in models.calls] == ["vlm"]
    assert pipeline.runner.visited == [
        "Validate",
        "HasAudio",
        "Analyze",
        "Understand",
        "Route",
        "Described",
        "NeedsAnswer",
        "Answer",
        "Assemble",
    ]
    # inline image written to S3 under inputs/<request id>/, normalised copies beside it
    request_id = result.request_id
    assert get_object(s3, f"inputs/{ANON}/{request_id}/source.png") == image_bytes()
    assert Image.open(io.BytesIO(get_object(s3, result.image.key))).format == "JPEG"
    assert set(result.timings_ms) >= {"validate", "answer", "assemble", "total"}


def test_vlm_request_is_the_idefics_template_with_a_data_uri(pipeline, models, lambda_context):
    status, _ = analyze({"image_base64": inline(), "text": "What colour is it?"}, lambda_context)
    assert status == 200
    request = models.requests("vlm")[0]
    prompt = request["inputs"]
    assert prompt.startswith("User: What colour is it?![](data:image/jpeg;base64,")
    assert prompt.endswith(")<end_of_utterance>\nAssistant:")
    assert request["parameters"]["stop"] == ["<end_of_utterance>", "\nUser:"]
    assert request["parameters"]["max_new_tokens"] == 256


def test_vlm_presigned_url_transport_and_messages_api(pipeline, models, deploy, lambda_context):
    deploy(vlm_image_transport="presigned_url", vlm_messages_api=True)
    status, _ = analyze(
        {"image_base64": inline(), "text": "What is it?", "options": {"max_new_tokens": 32}}, lambda_context
    )
    assert status == 200
    request = models.requests("vlm")[0]
    url = request["messages"][0]["content"][1]["image_url"]["url"]
    assert (
        url.startswith(f"https://{BUCKET}.s3.amazonaws.com/inputs/") and "vlm.jpg" in url and "X-Amz-Expires=300" in url
    )
    assert request["max_tokens"] == 32


def test_auto_segment_scales_boxes_to_the_original_image(pipeline, models, s3, lambda_context):
    put(s3, UPLOAD, image_bytes(4096, 2048, fmt="JPEG"), "image/jpeg")
    # the normalised image is 2048x1024; the double answers in an 8x4 frame: scale by 512
    status, body = analyze({"image_key": UPLOAD, "text": "outline the dog and the ball"}, lambda_context)
    assert status == 200, body
    result = AnalyzeResult.model_validate(body)
    assert result.task == "segment" and result.intent.label == "segment"
    assert [k.keyword for k in result.keywords] == ["dog", "ball"]
    assert models.requests("grounded_sam")[0]["prompts"] == ["dog", "ball"]
    detection = result.detections[0]
    assert detection.box == [1024.0, 512.0, 3072.0, 1536.0]
    png = Image.open(io.BytesIO(get_object(s3, detection.mask.key)))
    assert png.size == (4096, 2048) and detection.mask.area == 2048 * 1024
    assert detection.mask.key.startswith(f"results/{ANON}/{result.request_id}/")
    assert detection.mask.url and detection.mask.rle.size == [4, 8]
    sent = models.requests("grounded_sam")[0]
    assert Image.open(io.BytesIO(base64.b64decode(sent["image"]))).size == (2048, 1024)
    assert sent["box_threshold"] == 0.35 and sent["masks"] == "rle"


def test_segment_with_exif_rotated_photo_uses_upright_size(pipeline, s3, lambda_context):
    put(s3, UPLOAD, image_bytes(80, 40, fmt="JPEG", orientation=6), "image/jpeg")
    status, body = analyze({"image_key": UPLOAD, "task": "segment", "labels": ["dog"]}, lambda_context)
    assert status == 200
    assert body["image"]["width"] == 40 and body["image"]["height"] == 80
    assert body["detections"][0]["box"] == [10.0, 20.0, 30.0, 60.0]  # 8x4 frame scaled by (5, 20)


def test_large_rle_moves_to_one_s3_document(pipeline, models, s3, lambda_context):
    noisy = [[(x * 7 + y * 3) % 2 for x in range(64)] for y in range(64)]  # checkerboard-ish: long RLE
    rle = rle_from_mask(noisy)
    detections = [
        {"label": f"dog {i}", "score": 0.5, "box": [0, 0, 10, 10], "mask": {"rle": rle, "area": 1}} for i in range(40)
    ]
    models.queue("grounded_sam", {"width": 64, "height": 64, "detections": detections, "model": "g", "sam_model": "s"})
    status, body = analyze({"image_base64": inline(64, 64), "task": "segment", "labels": ["dog"]}, lambda_context)
    assert status == 200, body
    result = AnalyzeResult.model_validate(body)
    assert result.masks_rle is not None and result.masks_rle.count == 40 and result.masks_rle.url
    assert all(d.mask.rle is None for d in result.detections)
    stored = json.loads(get_object(s3, result.masks_rle.key))
    assert stored["masks"][3] == {"index": 3, "label": "dog 3", "rle": rle}
    assert len(json.dumps(body).encode()) < 256 * 1024


def test_tag_task(pipeline, models, lambda_context):
    labels = ["red dress", "blue jeans", "leather boots"]
    status, body = analyze(
        {
            "image_base64": inline(),
            "task": "tag",
            "labels": labels,
            "options": {"top_k": 10, "tag_mode": "sigmoid", "tag_threshold": 0.1},
        },
        lambda_context,
    )
    assert status == 200
    assert [t["label"] for t in body["tags"]] == labels and body["answer"] is None
    request = models.requests("clip_tagging")[0]
    assert request["top_k"] == 3 and request["mode"] == "sigmoid" and request["threshold"] == 0.1
    assert [c["role"] for c in models.calls] == ["clip_tagging"]  # no VLM, no intent for a forced tag


def test_auto_prompt_task(pipeline, models, lambda_context):
    status, body = analyze(
        {"image_base64": inline(), "text": "write a prompt for this", "options": {"interrogator_mode": "best"}},
        lambda_context,
    )
    assert status == 200
    assert body["task"] == "prompt" and body["prompt"]["prompt"] == "a red square, minimalism"
    assert models.requests("clip_interrogator")[0]["mode"] == "best"


def test_auto_tag_without_labels_falls_back_to_describe(pipeline, lambda_context):
    status, body = analyze({"image_base64": inline(), "text": "tag this product"}, lambda_context)
    assert status == 200 and body["task"] == "describe" and body["answer"]
    assert any("no labels" in w for w in body["warnings"])


def test_audio_becomes_the_text(pipeline, models, s3, lambda_context):
    put(s3, AUDIO, wav_bytes(1.0), "audio/wav")
    status, body = analyze(
        {"image_base64": inline(), "audio_key": AUDIO, "options": {"language": "en"}}, lambda_context
    )
    assert status == 200, body
    assert body["transcript"] == {"text": "outline the dog", "language": "en", "duration": 1.0, "translated": False}
    assert body["task"] == "segment"  # the transcript's intent
    asr_call = next(c for c in models.calls if c["role"] == "asr")["params"]
    assert asr_call["ContentType"] == "audio/wav" and asr_call["Body"] == wav_bytes(1.0)
    assert asr_call["CustomAttributes"] == "language=en;task=transcribe;vad_filter=true"
    assert models.requests("intent_keywords")[0]["text"] == "outline the dog"
    assert "Transcribe" in pipeline.runner.visited


def test_detail_plans_with_the_llm_first(pipeline, models, lambda_context):
    status, body = analyze(
        {"image_base64": inline(), "text": "What is happening?", "task": "describe", "options": {"detail": True}},
        lambda_context,
    )
    assert status == 200
    assert body["plan"] == ["Look at the colours", "Count the objects"]
    assert models.requests("llm")[0]["inputs"].startswith("<s>[INST] <<SYS>>\n")
    assert "1. Look at the colours\n2. Count the objects" in models.requests("vlm")[0]["inputs"]
    assert "plan" in body["timings_ms"] and "llm" in body["models"]


def test_throttled_model_is_retried_then_succeeds(pipeline, models, lambda_context):
    models.queue("vlm", client_error("ThrottlingException", 400), model_error(503, ""))
    status, body = analyze({"image_base64": inline(), "task": "describe"}, lambda_context)
    assert status == 200 and body["answer"] == "A red square."
    assert pipeline.runner.retries == {"Answer": 2}


def test_model_failure_after_retries_is_502_naming_the_step(pipeline, models, lambda_context):
    models.queue("vlm", *[model_error(500, {"error": {"code": "MODEL_FAILURE", "message": "CUDA oom"}})] * 4)
    status, body = analyze({"image_base64": inline(), "task": "describe"}, lambda_context)
    assert status == 502
    assert body["error"]["code"] == "VLM_FAILED" and body["error"]["step"] == "vlm"
    assert pipeline.runner.retries == {"Answer": 3}


def test_model_timeout_is_retried_once_then_504(pipeline, models, lambda_context):
    from botocore.exceptions import ReadTimeoutError

    models.queue("clip_interrogator", *[ReadTimeoutError(endpoint_url="https://x")] * 2)
    status, body = analyze({"image_base64": inline(), "task": "prompt"}, lambda_context)
    assert status == 504 and body["error"]["code"] == "PROMPT_TIMEOUT"
    assert pipeline.runner.retries == {"Prompt": 1}


def test_model_not_ready_fails_fast_in_the_express_machine(pipeline, models, lambda_context):
    models.queue("vlm", client_error("ModelNotReadyException", 429, "no instance"))
    from vlp.handlers import analyze as handler

    response = handler.handler(api_event({"image_base64": inline(), "task": "describe"}), lambda_context)
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "120"
    assert response_json(response)["error"]["code"] == "VLM_UNAVAILABLE"


def test_model_rejection_is_the_callers_error(pipeline, models, lambda_context):
    models.queue("clip_tagging", model_error(400, {"error": {"code": "INVALID_LABEL", "message": "label 3 is empty"}}))
    status, body = analyze({"image_base64": inline(), "task": "tag", "labels": ["a"]}, lambda_context)
    assert status == 400 and body["error"] == {
        "code": "INVALID_LABEL",
        "message": "label 3 is empty",
        "request_id": body["error"]["request_id"],
        "step": "tag",
    }
    assert pipeline.runner.retries == {}


@pytest.mark.parametrize(
    ("missing", "body"),
    [
        ("clip_tagging", {"task": "tag", "labels": ["a"]}),
        ("clip_interrogator", {"task": "prompt"}),
        ("grounded_sam", {"task": "segment", "labels": ["dog"]}),
        ("vlm", {"task": "describe"}),
        ("vlm", {}),
        ("asr", {"audio_key": AUDIO}),
        ("intent_keywords", {"task": "segment", "text": "find the dog"}),
    ],
)
def test_undeployed_model_is_task_not_available(pipeline, models, deploy, lambda_context, missing, body):
    deploy(**{missing: None})
    status, response = analyze({"image_base64": inline(), **body}, lambda_context)
    assert status == 422 and response["error"]["code"] == "TASK_NOT_AVAILABLE"
    assert missing in response["error"]["message"] and models.calls == []


def test_auto_routes_around_undeployed_models(pipeline, deploy, lambda_context):
    deploy(grounded_sam=None, llm=None)
    status, body = analyze(
        {"image_base64": inline(), "text": "outline the dog", "options": {"detail": True}}, lambda_context
    )
    assert status == 200 and body["task"] == "describe" and body["plan"] is None
    assert any("grounded_sam" in w for w in body["warnings"]) and any("planning" in w for w in body["warnings"])


def test_segment_without_any_phrase_is_422(pipeline, models, lambda_context):
    status, body = analyze({"image_base64": inline(), "task": "segment", "text": "what is there?"}, lambda_context)
    assert status == 422 and body["error"]["code"] == "NO_SEGMENT_PROMPTS"


def test_random_weight_models_are_flagged(pipeline, models, lambda_context):
    models.queue(
        "clip_tagging",
        {"tags": [{"label": "a", "score": 1.0}], "mode": "softmax", "model": "hf-internal-testing/tiny-random-clip"},
    )
    status, body = analyze({"image_base64": inline(), "task": "tag", "labels": ["a"]}, lambda_context)
    assert status == 200 and body["random_weights"] is True
    assert body["models"]["clip_tagging"] == {"model": "hf-internal-testing/tiny-random-clip", "random_weights": True}


def test_jobs_run_the_same_pipeline(pipeline, lambda_context):
    from vlp.handlers import jobs

    accepted = jobs.handler(api_event({"image_base64": inline(), "task": "describe"}, path="/v1/jobs"), lambda_context)
    assert accepted["statusCode"] == 202
    job_id = response_json(accepted)["job_id"]
    response = jobs.handler(api_event(method="GET", path_parameters={"id": job_id}), lambda_context)
    job = JobStatus.model_validate(response_json(response))
    assert job.status == "succeeded" and job.result.answer == "A red square." and job.result.request_id == job_id
    assert pipeline.inputs[0]["source"] == "jobs"


def test_failed_job_reports_the_error(pipeline, models, lambda_context):
    from vlp.handlers import jobs

    accepted = jobs.handler(api_event({"image_base64": base64.b64encode(b"GIF89a....").decode()}), lambda_context)
    job_id = response_json(accepted)["job_id"]
    body = response_json(jobs.handler(api_event(method="GET", path_parameters={"id": job_id}), lambda_context))
    assert body["status"] == "failed" and body["error"]["code"] == "UNSUPPORTED_IMAGE_FORMAT"
    assert body["error"]["status"] == 415


def test_every_state_stays_small(pipeline, models, s3, lambda_context):
    put(s3, AUDIO, wav_bytes(1.0), "audio/wav")
    labels = [f"label number {i:03d} " + "x" * 80 for i in range(32)]
    status, _ = analyze(
        {
            "image_base64": inline(400, 300, fmt="JPEG"),
            "audio_key": AUDIO,
            "task": "segment",
            "labels": labels,
            "text": "t" * 2000,
            "options": {"detail": True},
        },
        lambda_context,
    )
    assert status == 200  # the runner fails with States.DataLimitExceeded above 256 KB per state
    for value in pipeline.inputs:
        assert len(json.dumps(value)) < 250_000


def test_step_errors_carry_a_cause_the_handlers_understand():
    exc = ModelRetryableError("busy", code="VLM_UNAVAILABLE", step="vlm")
    assert json.loads(str(exc))["code"] == "VLM_UNAVAILABLE"
