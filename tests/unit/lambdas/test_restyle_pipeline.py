"""Task restyle through the API handlers and the Standard machine as docs/pipeline.md documents it (the Express
block plus the asl-jobs block), run in-process over the real handlers (moto S3, the SageMaker double): the request
fields and their bad values, POST /v1/analyze's refusal, interrogate -> compose -> restyle, the presigned PNG URL,
retries and the errors of the two model steps."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlparse

import pytest
from vlp.api.responses import JobStatus
from vlp.errors import CODES
from vlp.styles import CONTENT_TOKENS, PRESETS, approx_tokens
from vlp_media import image_bytes
from vlp_testkit import ANON, api_event, client_error, model_error, response_json


def inline(width: int = 64, height: int = 48) -> str:
    return base64.b64encode(image_bytes(width, height)).decode()


def body(**fields: Any) -> dict[str, Any]:
    return {"image_base64": inline(), "task": "restyle", "style": "starry_night", **fields}


def submit(payload: dict[str, Any], lambda_context) -> tuple[int, dict]:
    from vlp.handlers import jobs

    response = jobs.handler(api_event(payload, path="/v1/jobs"), lambda_context)
    return response["statusCode"], response_json(response)


def run_job(payload: dict[str, Any], lambda_context) -> dict:
    """Submit, then GET the job (the in-process machine has finished it): the job view."""
    from vlp.handlers import jobs

    status, accepted = submit(payload, lambda_context)
    assert status == 202, accepted
    response = jobs.handler(api_event(method="GET", path_parameters={"id": accepted["job_id"]}), lambda_context)
    assert response["statusCode"] == 200
    view = response_json(response)
    JobStatus.model_validate(view)  # the OpenAPI document's shape
    return view


# ---- the request ----

HOSTILE = "a lino\u202ecut"  # a bidi override
TOO_BIG_SEED = 2**32


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"style": "cubism"}, "INVALID_REQUEST"),  # not a preset
        ({"style_prompt": "in the style of a linocut"}, "INVALID_REQUEST"),  # both
        ({"style": None}, "MISSING_STYLE"),  # neither
        ({"style": None, "style_prompt": ""}, "INVALID_REQUEST"),
        ({"style": None, "style_prompt": "   "}, "INVALID_REQUEST"),
        ({"style": None, "style_prompt": "x" * 301}, "INVALID_REQUEST"),
        ({"style": None, "style_prompt": HOSTILE}, "INVALID_TEXT"),
        ({"style": None, "style_prompt": "ink\x1b[31m"}, "INVALID_TEXT"),  # a terminal escape
        ({"prompt": ""}, "INVALID_REQUEST"),
        ({"prompt": "a dog " * 200}, "INVALID_REQUEST"),  # 1,200 characters
        ({"prompt": HOSTILE}, "INVALID_TEXT"),
        ({"style": 3}, "INVALID_REQUEST"),
        ({"options": {"negative_prompt": "x" * 301}}, "INVALID_REQUEST"),
        ({"options": {"negative_prompt": HOSTILE}}, "INVALID_TEXT"),
        ({"options": {"strength": 0.05}}, "INVALID_REQUEST"),
        ({"options": {"strength": 1.01}}, "INVALID_REQUEST"),
        ({"options": {"strength": "0.5"}}, "INVALID_REQUEST"),  # strict: no string numbers
        ({"options": {"steps": 0}}, "INVALID_REQUEST"),
        ({"options": {"steps": 51}}, "INVALID_REQUEST"),
        ({"options": {"steps": 2.5}}, "INVALID_REQUEST"),
        ({"options": {"guidance_scale": -0.5}}, "INVALID_REQUEST"),
        ({"options": {"guidance_scale": 20.5}}, "INVALID_REQUEST"),
        ({"options": {"seed": TOO_BIG_SEED}}, "INVALID_REQUEST"),  # the image model's seed is 32-bit
        ({"options": {"seed": -1}}, "INVALID_REQUEST"),
        ({"task": "describe"}, "INVALID_REQUEST"),  # style is restyle's alone
        ({"task": "prompt", "style": None, "prompt": "a dog"}, "INVALID_REQUEST"),
        ({"task": "restyl"}, "UNKNOWN_TASK"),
    ],
)
def test_bad_restyle_input_is_a_clean_400(pipeline, lambda_context, fields, code):
    payload = {k: v for k, v in body(**fields).items() if v is not None}
    status, error = submit(payload, lambda_context)
    assert status == 400 == CODES[code][0], error
    assert error["error"]["code"] == code and error["error"]["message"], error
    assert pipeline.inputs == []  # nothing started


def test_analyze_refuses_restyle_with_use_jobs(pipeline, models, lambda_context):
    from vlp.handlers import analyze

    response = analyze.handler(api_event(body()), lambda_context)
    error = response_json(response)["error"]
    assert response["statusCode"] == 400 and error["code"] == "USE_JOBS"
    assert error["message"].startswith("task 'restyle' runs through POST /v1/jobs")
    assert pipeline.inputs == [] and models.calls == []
    # a bad body is still its own error first
    response = analyze.handler(api_event(body(style="cubism")), lambda_context)
    assert response_json(response)["error"]["code"] == "INVALID_REQUEST"


def test_an_execution_started_by_hand_on_the_express_machine_is_refused(pipeline, models, lambda_context):
    """The validate step refuses it too: the Express machine has no Restyle branch."""
    from vlp.api.executions import execution_input
    from vlp.requests import AnalyzeRequest

    request = AnalyzeRequest.model_validate(body())
    payload = execution_input(
        request, caller=ANON, request_id="54c52a25-45a7-4c14-8056-696597417062", api_request_id=None, source="analyze"
    )
    outcome = pipeline.runner.run(__import__("json").loads(payload))
    assert outcome["status"] == "FAILED" and "USE_JOBS" in outcome["cause"]
    assert models.calls == []


def test_interrogator_mode_is_best_for_restyle_unless_the_caller_chose(lambda_context):
    from vlp.requests import AnalyzeRequest

    assert AnalyzeRequest.model_validate(body()).options.interrogator_mode == "best"
    chosen = AnalyzeRequest.model_validate(body(options={"interrogator_mode": "fast", "steps": 4}))
    assert chosen.options.interrogator_mode == "fast" and chosen.options.steps == 4
    assert (
        AnalyzeRequest.model_validate({"image_base64": inline(), "task": "prompt"}).options.interrogator_mode == "fast"
    )


# ---- the job ----


def test_restyle_job_interrogates_composes_and_restyles(pipeline, models, s3, lambda_context):
    view = run_job(body(options={"strength": 0.5, "steps": 12, "guidance_scale": 5.5, "seed": 7}), lambda_context)
    assert view["status"] == "succeeded", view
    result, job_id = view["result"], view["job_id"]
    assert result["task"] == "restyle" == result["requested_task"] and result["answer"] is None
    # interrogation: the normalised image, `best` mode
    (interrogation,) = models.requests("clip_interrogator")
    assert interrogation["mode"] == "best" and base64.b64decode(interrogation["image"])[:2] == b"\xff\xd8"
    # the image model got S3 references: the normalised image in, results/<caller>/<job id>/restyled.png out
    (sent,) = models.requests("restyle")
    preset = PRESETS["starry_night"]
    key = f"results/{ANON}/{job_id}/restyled.png"
    assert sent["image"] == {"bucket": sent["output"]["bucket"], "key": f"inputs/{ANON}/{job_id}/image.jpg"}
    assert sent["output"]["key"] == key
    assert sent["prompt"] == f"{preset.prefix}, a red square, minimalism"  # the interrogated description
    assert sent["negative_prompt"] == preset.negative
    assert (sent["strength"], sent["steps"], sent["guidance_scale"], sent["seed"]) == (0.5, 12, 5.5, 7)
    assert models.requests("vlm") == []  # no VLM answer for restyle
    restyle = result["restyle"]
    assert restyle["style"] == "starry_night" and restyle["prompt"] == sent["prompt"]
    assert restyle["source_prompt"] == "a red square, minimalism" and restyle["truncated"] is False
    image = restyle["restyled"]
    assert (image["key"], image["width"], image["height"], image["seed"]) == (key, 64, 48, 7)
    url = urlparse(image["url"])
    assert url.path.endswith(key) and "X-Amz-Signature" in url.query and result["urls_expire_at"]
    assert set(result["models"]) == {"clip_interrogator", "restyle"}
    assert {"interrogate", "restyle"} <= set(result["timings_ms"]) and "answer" not in result["timings_ms"]


def test_a_given_prompt_skips_the_interrogator(pipeline, models, deploy, lambda_context):
    deploy(clip_interrogator=None)  # not needed: the caller describes the image
    view = run_job(
        body(style=None, style_prompt="in the style of a linocut", prompt="a dog on a beach"), lambda_context
    )
    assert view["status"] == "succeeded", view
    restyle = view["result"]["restyle"]
    assert restyle["style"] is None and restyle["source_prompt"] == "a dog on a beach"
    assert restyle["prompt"] == "in the style of a linocut, a dog on a beach"
    assert models.requests("clip_interrogator") == [] and "clip_interrogator" not in view["result"]["models"]
    assert "interrogate" not in view["result"]["timings_ms"]


def test_negative_prompt_and_a_drawn_seed(pipeline, models, lambda_context):
    view = run_job(body(style="anime", options={"negative_prompt": "cars"}), lambda_context)
    (sent,) = models.requests("restyle")
    assert sent["seed"] is None and sent["negative_prompt"] == f"{PRESETS['anime'].negative}, cars"
    assert view["result"]["restyle"]["restyled"]["seed"] == 42  # what the container drew and reported


def test_a_long_prompt_is_cut_to_the_window_with_a_warning(pipeline, models, lambda_context):
    long = " ".join(["a very detailed scene of a harbour at dusk with fishing boats and gulls"] * 12)
    view = run_job(body(style=None, style_prompt="x " * 100 + "linocut", prompt=long[:1000]), lambda_context)
    restyle = view["result"]["restyle"]
    assert restyle["truncated"] is True and approx_tokens(restyle["prompt"]) <= CONTENT_TOKENS
    assert models.requests("restyle")[0]["prompt"] == restyle["prompt"]
    assert any("77-token" in warning for warning in view["result"]["warnings"])


def test_the_containers_exact_truncation_is_reported_too(pipeline, models, lambda_context):
    models.queue("restyle", lambda request: {**_restyled(request), "truncated": True})
    view = run_job(body(prompt="a dog"), lambda_context)
    assert view["result"]["restyle"]["truncated"] is True
    assert any("77-token" in warning for warning in view["result"]["warnings"])


def _restyled(request: dict) -> dict:
    return {"key": request["output"]["key"], "width": 64, "height": 48, "seed": 1, "model": "sdxl-test"}


@pytest.mark.parametrize(
    ("missing", "fields"),
    [("restyle", {}), ("restyle", {"prompt": "a dog"}), ("clip_interrogator", {})],
)
def test_an_undeployed_model_is_task_not_available(pipeline, models, deploy, lambda_context, missing, fields):
    deploy(**{missing: None})
    view = run_job(body(**fields), lambda_context)
    assert (
        view["status"] == "failed" and view["error"]["code"] == "TASK_NOT_AVAILABLE" and view["error"]["status"] == 422
    )
    assert missing in view["error"]["message"] and models.calls == []


def test_out_of_memory_and_a_starting_endpoint_are_retried(pipeline, models, lambda_context):
    oom = model_error(503, {"error": {"code": "OUT_OF_MEMORY", "message": "CUDA out of memory"}})
    models.queue("restyle", oom, client_error("ModelNotReadyException", 429, "scaling from zero"))
    view = run_job(body(prompt="a dog"), lambda_context)
    assert view["status"] == "succeeded", view
    assert pipeline.jobs_runner.retries == {"Restyle": 2}


@pytest.mark.parametrize(
    ("step", "outcome", "code", "status"),
    [
        ("restyle", model_error(500, {"error": {"code": "MODEL_FAILURE", "message": "boom"}}), "RESTYLE_FAILED", 502),
        ("restyle", lambda r: {**_restyled(r), "key": "results/x/y/other.png"}, "RESTYLE_FAILED", 502),
        (
            "restyle",
            model_error(400, {"error": {"code": "INVALID_IMAGE", "message": "truncated"}}),
            "INVALID_IMAGE",
            400,
        ),
        ("clip_interrogator", model_error(500, {"error": {"code": "X", "message": "boom"}}), "INTERROGATE_FAILED", 502),
    ],
)
def test_model_step_errors(pipeline, models, lambda_context, step, outcome, code, status):
    models.queue(step, *([outcome] * 4))
    view = run_job(body(), lambda_context)
    assert view["status"] == "failed" and (view["error"]["code"], view["error"]["status"]) == (code, status), view


def test_restyle_states_stay_small_and_carry_no_pixels(pipeline, models, lambda_context):
    import json

    run_job(body(prompt="a dog " * 150), lambda_context)
    history = pipeline.jobs_runner.history
    assert {"Interrogate", "Restyle"} <= {entry["state"] for entry in history}
    states = [json.dumps(entry.get("input", entry.get("output"))) for entry in history]
    assert max(len(state) for state in states) < 32 * 1024
    assert not any("image_base64" in state for state in states[1:])  # after Validate: keys, never pixels
