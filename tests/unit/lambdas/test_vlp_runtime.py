"""Handler plumbing: correlation ids in logs, EMF metrics, CORS, and S3 errors mapped to domain errors."""

from __future__ import annotations

import contextlib
import json

import pytest
from botocore.stub import Stubber
from vlp import aws
from vlp.errors import CallerError, DependencyError, VlpError
from vlp.http import ApiEvent, cors_headers
from vlp.pipeline import storage
from vlp.runtime import api_handler, step_handler
from vlp_testkit import ANON, BUCKET, api_event

KEY = f"uploads/{ANON}/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg"


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


@pytest.fixture
def log_stream():
    """The JSON log lines the Powertools Logger writes (its handler keeps the stream it was created with)."""
    import io

    from vlp.runtime import logger

    buffer = io.StringIO()
    old = logger.registered_handler.setStream(buffer)
    yield buffer
    logger.registered_handler.setStream(old)


def test_api_errors_are_logged_with_the_api_gateway_request_id_and_counted(
    lambda_context, capfd, monkeypatch, log_stream
):
    from vlp.handlers import analyze

    client = aws.stepfunctions_client(sync=True)
    monkeypatch.setattr(analyze, "SFN", client)
    with Stubber(client) as stubber:
        stubber.add_client_error("start_sync_execution", service_error_code="ServiceUnavailable", http_status_code=503)
        response = analyze.handler(api_event({"image_key": KEY}), lambda_context)
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "2"
    lines = json_lines(capfd.readouterr().out)
    logs = [line for line in json_lines(log_stream.getvalue()) if line.get("message") == "request failed"]
    assert logs and logs[0]["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert logs[0]["error"]["code"] == "PIPELINE_UNAVAILABLE" and logs[0]["function_request_id"]
    emf = [line for line in lines if "_aws" in line]
    assert emf and emf[-1]["Route"] == "analyze" and emf[-1]["Errors"] == [1.0] and "Latency" in emf[-1]
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "VLP"


def test_steps_log_the_pipeline_request_id_and_reraise_domain_errors(lambda_context, capfd, log_stream):
    from vlp.runtime import logger

    logger.setLevel("INFO")

    @step_handler("tag")
    def failing(event, context):
        raise CallerError("Task 'tag' needs labels to score.", code="MISSING_LABELS")

    with pytest.raises(CallerError):
        failing({"request_id": "54c52a25-45a7-4c14-8056-696597417062"}, lambda_context)
    logger.setLevel("WARNING")
    log = next(line for line in json_lines(log_stream.getvalue()) if line.get("message") == "step rejected the request")
    assert log["correlation_id"] == "54c52a25-45a7-4c14-8056-696597417062" and log["step"] == "tag"
    assert log["error"]["code"] == "MISSING_LABELS"
    emf = [line for line in json_lines(capfd.readouterr().out) if "_aws" in line][-1]
    assert emf["Step"] == "tag" and emf["CallerErrors"] == [1.0]


def test_step_model_latency_metric(lambda_context, capfd):
    @step_handler("vlm")
    def ok(event, context):
        return {"answer": "x", "model_ms": 1234.5, "elapsed_ms": 1300.0}

    assert ok({"request_id": "54c52a25-45a7-4c14-8056-696597417062"}, lambda_context)["answer"] == "x"
    emf = [line for line in json_lines(capfd.readouterr().out) if "_aws" in line][-1]
    assert emf["ModelLatency"] == [1234.5] and emf["Step"] == "vlm"


def test_unexpected_exceptions_in_api_functions_are_500_without_details(lambda_context):
    @api_handler("test")
    def broken(event, context):
        raise KeyError("internal detail")

    response = broken(api_event({}), lambda_context)
    assert response["statusCode"] == 500 and "internal detail" not in response["body"]
    assert json.loads(response["body"])["error"]["code"] == "INTERNAL_ERROR"


def test_cors_headers_for_allowed_origins(lambda_context):
    @api_handler("test", cors_origins=("http://localhost:3000",))
    def ok(event, context):
        from vlp.http import json_response

        return json_response(200, {}, request_id=event.request_id)

    event = api_event({})
    event["headers"]["origin"] = "http://localhost:3000"
    assert ok(event, lambda_context)["headers"]["Access-Control-Allow-Origin"] == "http://localhost:3000"
    event["headers"]["origin"] = "https://evil.example"
    assert "Access-Control-Allow-Origin" not in ok(event, lambda_context)["headers"]
    parsed = ApiEvent.model_validate(api_event({}))
    assert cors_headers(parsed, ("*",)) == {}  # no Origin header: not a browser
    parsed.headers["Origin"] = "https://any.example"
    assert cors_headers(parsed, ("*",)) == {"Access-Control-Allow-Origin": "*"}


@pytest.mark.parametrize(
    ("code", "status", "kind", "error_code"),
    [
        ("NoSuchKey", 404, CallerError, "UPLOAD_NOT_FOUND"),
        ("SlowDown", 503, DependencyError, "STORAGE_UNAVAILABLE"),
        ("InternalError", 500, DependencyError, "STORAGE_UNAVAILABLE"),
        ("AccessDenied", 403, VlpError, "INTERNAL_ERROR"),
        ("KMS.DisabledException", 400, VlpError, "INTERNAL_ERROR"),
    ],
)
def test_s3_errors_are_classified(code, status, kind, error_code):
    client = aws.s3_client()
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_object",
            service_error_code=code,
            http_status_code=status,
            expected_params={"Bucket": BUCKET, "Key": KEY},
        )
        with pytest.raises(kind) as info:
            storage.read(client, BUCKET, KEY, max_bytes=10)
    assert type(info.value) is kind and info.value.code == error_code


def test_object_above_the_limit_is_refused_before_reading(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * 2000)
    with pytest.raises(CallerError) as info:
        storage.read(s3, BUCKET, KEY, max_bytes=1000, too_large="AUDIO_TOO_LARGE")
    assert info.value.code == "AUDIO_TOO_LARGE" and info.value.status == 413
    assert storage.read(s3, BUCKET, KEY, byte_range="bytes=0-9") == b"x" * 10


def test_s3_outage_during_validate_is_retried_by_the_state_machine(pipeline, s3, lambda_context, monkeypatch):
    from vlp.handlers import analyze, validate

    real = validate.handler.clients["s3"]
    failures = {"left": 1}

    class Flaky:
        def __getattr__(self, name):
            return getattr(real, name)

        def put_object(self, **kwargs):
            if failures["left"]:
                failures["left"] -= 1
                from botocore.exceptions import ClientError

                raise ClientError(
                    {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"
                )
            return real.put_object(**kwargs)

    monkeypatch.setitem(validate.handler.clients, "s3", Flaky())
    import base64

    from vlp_media import image_bytes

    response = analyze.handler(api_event({"image_base64": base64.b64encode(image_bytes()).decode()}), lambda_context)
    assert response["statusCode"] == 200
    assert pipeline.runner.retries == {"Validate": 1}
