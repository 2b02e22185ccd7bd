"""Faults at the local SageMaker runtime: the state machine retries as its definition says (counted at the
endpoint), then fails cleanly with the step's code; async jobs stay retrievable; uploads are never lost."""

from __future__ import annotations

import pytest
from vlp_local_kit import READ_TIMEOUT_SECONDS, error_of

SEGMENT = {
    "text": "outline the dog",
    "task": "segment",
    "labels": ["dog"],
    "options": {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 2},
}


DESCRIBE = {"text": "what is it?", "task": "describe"}


def _run(api, image_key, **body):
    return api.analyze({"image_key": image_key, **body})


def test_throttling_is_retried_until_it_succeeds(api, models, image_key):
    models.fault("vlm", "throttle", count=2)
    response = _run(api, image_key, **DESCRIBE)
    assert response.status_code == 200, response.text
    assert models.invocations("vlm") == 3  # two ThrottlingExceptions, then the answer


@pytest.mark.parametrize(
    ("role", "fault", "body", "status", "code", "step", "invocations"),
    [
        pytest.param(
            "vlm", {"kind": "throttle"}, DESCRIBE, 503, "VLM_UNAVAILABLE", "vlm", 4, id="throttling-persists"
        ),  # 1 + MaxAttempts 3
        pytest.param(
            "grounded_sam",
            {"kind": "container_error", "status": 500},
            SEGMENT,
            502,
            "SEGMENT_FAILED",
            "segment",
            4,
            id="container-5xx-retried",
        ),
        # The understand call (keywords, for a forced segment) outlives the Lambda's read timeout (5 s here):
        # ModelTimeoutError, retried once; the code callers know, KEYWORDS_TIMEOUT.
        pytest.param(
            "intent_keywords",
            {"kind": "delay", "count": 2, "delay_ms": (READ_TIMEOUT_SECONDS + 2) * 1000},
            SEGMENT,
            504,
            "KEYWORDS_TIMEOUT",
            "keywords",
            2,
            id="slow-model-past-the-read-timeout",
        ),
        pytest.param(
            "vlm",
            {"kind": "invocation_timeout"},
            DESCRIBE,
            504,
            "VLM_TIMEOUT",
            "vlm",
            2,
            id="sagemaker-invocation-timeout",
        ),  # ModelTimeoutError: MaxAttempts 1
        pytest.param(
            "vlm",
            {
                "kind": "container_error",
                "status": 422,
                "body": {
                    "error": "Input validation error: `inputs` must have less than 2048 tokens",
                    "error_type": "validation",
                },
            },
            DESCRIBE,
            422,
            "MODEL_REJECTED_INPUT",
            "vlm",
            1,
            id="tgi-validation-error-is-a-caller-error",
        ),
    ],
)
def test_a_fault_fails_with_the_step_code_after_the_defined_retries(
    api, models, image_key, role, fault, body, status, code, step, invocations
):
    """The fault holds (every call, unless `count` says otherwise): the endpoint sees exactly the attempts the
    state machine's retry policy allows, and the caller gets the step's code."""
    models.fault(role, **{"count": -1, **fault})
    response = _run(api, image_key, **body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error.get("step")) == (code, step), error
    assert models.invocations(role) == invocations


def test_sagemaker_5xx_then_recovery(api, models, image_key):
    models.fault("clip_interrogator", "service_unavailable", count=1)
    models.fault("clip_interrogator", "internal_failure", count=1)
    response = _run(api, image_key, task="prompt")
    assert response.status_code == 200, response.text
    assert models.invocations("clip_interrogator") == 3


def test_model_error_4xx_is_not_retried(api, models, image_key):
    models.model_error("clip_tagging", 422, "VALUE_OUT_OF_RANGE", "injected: top_k out of range")
    response = _run(api, image_key, task="tag", labels=["a", "b"])
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error == {
        "code": "VALUE_OUT_OF_RANGE",
        "message": "injected: top_k out of range",
        "request_id": error["request_id"],
        "step": "tag",
    }
    assert models.invocations("clip_tagging") == 1


def test_model_not_ready_on_the_express_machine(api, models, image_key):
    models.fault("vlm", "model_not_ready", count=-1)
    response = _run(api, image_key, **DESCRIBE)
    assert response.status_code == 503, response.text
    assert error_of(response)["code"] == "VLM_UNAVAILABLE"
    assert response.headers["Retry-After"] == "120"
    assert models.invocations("vlm") == 1  # Express: not retried (jobs are)


def test_connection_reset_is_retried(api, models, image_key):
    models.fault("vlm", "connection_reset", count=1)
    response = _run(api, image_key, **DESCRIBE)
    assert response.status_code == 200, response.text
    assert models.invocations("vlm") == 2


def test_failing_job_stays_retrievable_and_the_upload_survives(api, models, s3, bucket, jpeg):
    key = api.upload(jpeg)
    models.fault("grounded_sam", "container_error", status=500, count=-1)
    job_id = api.submit({"image_key": key, **SEGMENT})
    view, seen = api.wait_job(job_id)
    assert seen[-1] == "failed", seen
    assert view["error"]["code"] == "SEGMENT_FAILED" and view["error"]["status"] == 502
    assert models.invocations("grounded_sam") == 4
    for _ in range(2):  # retrievable, and stable
        again = api.get(f"/v1/jobs/{job_id}")
        assert again.status_code == 200 and again.json()["status"] == "failed"
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(jpeg)
    models.reset()
    retry = api.analyze({"image_key": key, **SEGMENT})  # the same upload, once the model is back
    assert retry.status_code == 200, retry.text


@pytest.mark.parametrize("kind", ["throttle", "container_error"])
def test_uploads_survive_failed_analyses(api, models, s3, bucket, jpeg, audio_key, kind):
    key = api.upload(jpeg)
    models.fault("asr", kind, count=-1, status=503)
    response = api.analyze({"image_key": key, "audio_key": audio_key, "task": "describe"})
    assert response.status_code in (502, 503), response.text
    assert error_of(response)["step"] == "asr"
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(jpeg)
    assert s3.head_object(Bucket=bucket, Key=audio_key)["ContentLength"] > 0
