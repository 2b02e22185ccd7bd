"""Faults at the local SageMaker runtime: the state machine retries as its definition says (counted at the
endpoint), then fails cleanly with the step's code; async jobs stay retrievable; uploads are never lost."""

from __future__ import annotations

import pytest
from vlp_local_kit import error_of

SEGMENT = {
    "text": "outline the dog",
    "task": "segment",
    "labels": ["dog"],
    "options": {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 2},
}


def _run(api, image_key, **body):
    return api.analyze({"image_key": image_key, **body})


def test_throttling_is_retried_until_it_succeeds(api, models, image_key):
    models.fault("vlm", "throttle", count=2)
    response = _run(api, image_key, text="what is it?", task="describe")
    assert response.status_code == 200, response.text
    assert models.invocations("vlm") == 3  # two ThrottlingExceptions, then the answer


def test_throttling_that_persists_fails_with_unavailable(api, models, image_key):
    models.fault("vlm", "throttle", count=-1)
    response = _run(api, image_key, text="what is it?", task="describe")
    assert response.status_code == 503, response.text
    error = error_of(response)
    assert error["code"] == "VLM_UNAVAILABLE" and error["step"] == "vlm"
    assert models.invocations("vlm") == 4  # 1 + MaxAttempts 3


def test_container_5xx_is_retried_then_fails(api, models, image_key):
    models.fault("grounded_sam", "container_error", status=500, count=-1)
    response = _run(api, image_key, **SEGMENT)
    assert response.status_code == 502, response.text
    error = error_of(response)
    assert error["code"] == "SEGMENT_FAILED" and error["step"] == "segment"
    assert models.invocations("grounded_sam") == 4


def test_sagemaker_5xx_then_recovery(api, models, image_key):
    models.fault("clip_interrogator", "service_unavailable", count=1)
    models.fault("clip_interrogator", "internal_failure", count=1)
    response = _run(api, image_key, task="prompt")
    assert response.status_code == 200, response.text
    assert models.invocations("clip_interrogator") == 3


def test_model_error_4xx_is_not_retried(api, models, image_key):
    models.fault(
        "clip_tagging",
        "container_error",
        status=422,
        body={"error": {"code": "VALUE_OUT_OF_RANGE", "message": "injected: top_k out of range"}},
    )
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


def test_tgi_validation_error_is_a_caller_error(api, models, image_key):
    models.fault(
        "vlm",
        "container_error",
        status=422,
        body={"error": "Input validation error: `inputs` must have less than 2048 tokens", "error_type": "validation"},
    )
    response = _run(api, image_key, text="what?", task="describe")
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "MODEL_REJECTED_INPUT"
    assert models.invocations("vlm") == 1


def test_slow_model_past_the_read_timeout(api, models, image_key):
    """The understand call (keywords, for a forced segment) outlives the Lambda's read timeout (5 s here):
    ModelTimeoutError, retried once; the code callers know, KEYWORDS_TIMEOUT."""
    from conftest import READ_TIMEOUT_SECONDS

    models.fault("intent_keywords", "delay", count=2, delay_ms=(READ_TIMEOUT_SECONDS + 2) * 1000)
    response = _run(api, image_key, **SEGMENT)
    assert response.status_code == 504, response.text
    error = error_of(response)
    assert error["code"] == "KEYWORDS_TIMEOUT" and error["step"] == "keywords"
    assert models.invocations("intent_keywords") == 2


def test_sagemaker_invocation_timeout(api, models, image_key):
    models.fault("vlm", "invocation_timeout", count=-1)
    response = _run(api, image_key, text="what?", task="describe")
    assert response.status_code == 504, response.text
    assert error_of(response)["code"] == "VLM_TIMEOUT"
    assert models.invocations("vlm") == 2  # ModelTimeoutError: MaxAttempts 1


def test_model_not_ready_on_the_express_machine(api, models, image_key):
    models.fault("vlm", "model_not_ready", count=-1)
    response = _run(api, image_key, text="what?", task="describe")
    assert response.status_code == 503, response.text
    assert error_of(response)["code"] == "VLM_UNAVAILABLE"
    assert response.headers["Retry-After"] == "120"
    assert models.invocations("vlm") == 1  # Express: not retried (jobs are)


def test_connection_reset_is_retried(api, models, image_key):
    models.fault("vlm", "connection_reset", count=1)
    response = _run(api, image_key, text="what?", task="describe")
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
