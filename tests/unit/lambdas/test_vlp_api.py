"""The API handlers: uploads (presigned POST policy), analyze (StartSyncExecution) and jobs (StartExecution,
DescribeExecution), with botocore Stubber on real stepfunctions clients and moto S3."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest
from botocore.stub import ANY, Stubber
from vlp import aws
from vlp.api.responses import AnalyzeResult, ErrorResponse, JobAccepted, JobStatus, UploadResponse
from vlp.errors import CallerError, ModelNotReadyError, model_error
from vlp_testkit import ANON, BUCKET, JOBS_STATE_MACHINE_ARN, STATE_MACHINE_ARN, api_event, caller_of, response_json

KEY = f"uploads/{ANON}/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def lambda_cause(exc: Exception) -> str:
    return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": ["File x"]})


def result_document(request_id: str, *, with_mask: bool = False) -> dict:
    detections = []
    if with_mask:
        detections = [
            {
                "label": "dog",
                "score": 0.9,
                "box": [1.0, 2.0, 3.0, 4.0],
                "mask": {
                    "key": f"results/{ANON}/{request_id}/mask-0.png",
                    "area": 4,
                    "rle": {"size": [4, 4], "counts": "0"},
                },
            }
        ]
    return {
        "request_id": request_id,
        "task": "segment" if with_mask else "describe",
        "requested_task": "auto",
        "answer": "A dog.",
        "plan": None,
        "intent": None,
        "keywords": [],
        "transcript": None,
        "image": {
            "width": 4,
            "height": 4,
            "normalised_width": 4,
            "normalised_height": 4,
            "format": "PNG",
            "key": f"inputs/{ANON}/{request_id}/image.jpg",
        },
        "detections": detections,
        "masks_rle": None,
        "tags": None,
        "prompt": None,
        "models": {},
        "random_weights": False,
        "timings_ms": {"total": 10.0},
        "warnings": [],
    }


@pytest.fixture
def sync_stub(monkeypatch):
    from vlp.handlers import analyze

    client = aws.stepfunctions_client(sync=True)
    monkeypatch.setattr(analyze, "SFN", client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def jobs_stub(monkeypatch):
    from vlp.handlers import jobs

    client = aws.stepfunctions_client()
    monkeypatch.setattr(jobs, "SFN", client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def sync_response(status: str, **fields) -> dict:
    return {
        "executionArn": STATE_MACHINE_ARN.replace("stateMachine", "execution") + ":x",
        "startDate": NOW,
        "stopDate": NOW,
        "status": status,
        **fields,
    }


# ---- uploads ----


@pytest.mark.parametrize(
    ("kind", "content_type", "limit"),
    [("image", "image/png", 10 * 1024 * 1024), ("audio", "audio/mpeg", 5 * 1024 * 1024)],
)
def test_upload_returns_a_presigned_post_enforcing_type_and_size(s3, lambda_context, kind, content_type, limit):
    from vlp.handlers import uploads

    response = uploads.handler(
        api_event({"kind": kind, "content_type": content_type}, path="/v1/uploads"), lambda_context
    )
    assert response["statusCode"] == 201
    body = UploadResponse.model_validate(response_json(response)).model_dump()
    assert body["key"].startswith("uploads/") and body["key"].endswith("." + ("png" if kind == "image" else "mp3"))
    assert body["max_bytes"] == limit and body["expires_in"] == 900
    policy = json.loads(base64.b64decode(body["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, limit] in conditions
    assert {"Content-Type": content_type} in conditions
    assert {"bucket": BUCKET} in conditions and {"key": body["key"]} in conditions
    assert body["fields"]["Content-Type"] == content_type and body["fields"]["key"] == body["key"]
    assert body["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4: required for KMS-encrypted buckets


def test_upload_limit_follows_max_upload_bytes(s3, lambda_context, monkeypatch):
    from vlp.handlers import uploads

    monkeypatch.setattr(uploads, "SETTINGS", uploads.SETTINGS.model_copy(update={"max_upload_bytes": 2048}))
    response = uploads.handler(api_event({"kind": "image", "content_type": "image/jpeg"}), lambda_context)
    assert response_json(response)["max_bytes"] == 2048


def test_two_uploads_get_two_keys(s3, lambda_context):
    from vlp.handlers import uploads

    keys = {
        response_json(uploads.handler(api_event({"kind": "image", "content_type": "image/webp"}), lambda_context))[
            "key"
        ]
        for _ in range(2)
    }
    assert len(keys) == 2


# ---- analyze ----


def test_analyze_starts_the_express_machine_and_returns_its_result(s3, sync_stub, lambda_context):
    from vlp.handlers import analyze

    captured = {}

    def succeed(**params):
        captured.update(params)

    sync_stub.add_response(
        "start_sync_execution",
        sync_response(
            "SUCCEEDED", output=json.dumps(result_document("0" * 8 + "-0000-4000-8000-" + "0" * 12, with_mask=True))
        ),
        {"stateMachineArn": STATE_MACHINE_ARN, "name": ANY, "input": ANY},
    )
    analyze.SFN.meta.events.register("before-parameter-build.sfn.StartSyncExecution", succeed)
    response = analyze.handler(api_event({"image_key": KEY, "text": "find the dog", "task": "segment"}), lambda_context)
    assert response["statusCode"] == 200
    body = AnalyzeResult.model_validate(response_json(response)).model_dump()
    url = body["detections"][0]["mask"]["url"]
    assert urlparse(url).path.endswith("/mask-0.png") and "X-Amz-Signature" in parse_qs(urlparse(url).query)
    assert body["urls_expire_at"]
    execution = json.loads(captured["params"]["input"])
    assert captured["params"]["name"] == execution["request_id"]
    assert execution["source"] == "analyze" and execution["api_request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert execution["request"]["image_key"] == KEY and execution["request"]["task"] == "segment"
    assert execution["request"]["options"]["box_threshold"] == 0.35


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (CallerError("Task 'tag' needs labels to score.", code="MISSING_LABELS"), 400, "MISSING_LABELS"),
        (CallerError("10001 labels", code="TOO_MANY_LABELS", status=400, step="tag"), 400, "TOO_MANY_LABELS"),
        (model_error(ModelNotReadyError, "vlm", "starting", retry_after=120), 503, "VLM_UNAVAILABLE"),
    ],
)
def test_failed_execution_becomes_the_steps_error(s3, sync_stub, lambda_context, exc, status, code):
    from vlp.handlers import analyze

    sync_stub.add_response(
        "start_sync_execution", sync_response("FAILED", error=type(exc).__name__, cause=lambda_cause(exc))
    )
    response = analyze.handler(api_event({"image_key": KEY}), lambda_context)
    assert response["statusCode"] == status
    body = ErrorResponse.model_validate(response_json(response)).model_dump()
    assert body["error"]["code"] == code and body["error"]["message"] == exc.message
    if exc.retry_after:
        assert response["headers"]["Retry-After"] == "120"
    assert "stackTrace" not in response["body"] and "File x" not in response["body"]


def test_timed_out_execution_is_504(s3, sync_stub, lambda_context):
    from vlp.handlers import analyze

    sync_stub.add_response("start_sync_execution", sync_response("TIMED_OUT"))
    response = analyze.handler(api_event({"image_key": KEY}), lambda_context)
    assert response["statusCode"] == 504 and response_json(response)["error"]["code"] == "PIPELINE_TIMEOUT"


def test_unexpected_step_exception_is_500_without_internals(s3, sync_stub, lambda_context):
    from vlp.handlers import analyze

    sync_stub.add_response(
        "start_sync_execution",
        sync_response("FAILED", error="KeyError", cause=lambda_cause(KeyError("secret internal detail"))),
    )
    response = analyze.handler(api_event({"image_key": KEY}), lambda_context)
    assert response["statusCode"] == 500 and "secret" not in response["body"]


@pytest.mark.parametrize(
    ("code", "http", "status", "error_code"),
    [
        ("ThrottlingException", 400, 429, "THROTTLED"),
        ("InvalidExecutionInput", 400, 413, "REQUEST_TOO_LARGE"),
        ("StateMachineDoesNotExist", 400, 500, "INTERNAL_ERROR"),
        ("ServiceUnavailable", 503, 503, "PIPELINE_UNAVAILABLE"),
    ],
)
def test_start_errors_are_mapped(s3, sync_stub, lambda_context, code, http, status, error_code):
    from vlp.handlers import analyze

    sync_stub.add_client_error("start_sync_execution", service_error_code=code, http_status_code=http)
    response = analyze.handler(api_event({"image_key": KEY}), lambda_context)
    assert response["statusCode"] == status and response_json(response)["error"]["code"] == error_code


def test_body_sent_base64_encoded_by_api_gateway_is_read(s3, sync_stub, lambda_context):
    from vlp.handlers import analyze

    sync_stub.add_response("start_sync_execution", sync_response("TIMED_OUT"))
    raw = base64.b64encode(json.dumps({"image_key": KEY}).encode()).decode()
    response = analyze.handler(api_event(raw=raw, base64_encoded=True), lambda_context)
    assert response["statusCode"] == 504


def test_http_api_payload_v2_is_accepted(s3, sync_stub, lambda_context):
    from vlp.handlers import analyze

    sync_stub.add_response("start_sync_execution", sync_response("TIMED_OUT"))
    event = {
        "version": "2.0",
        "routeKey": "POST /v1/analyze",
        "rawPath": "/v1/analyze",
        "requestContext": {"requestId": "JKJaXmPLvHcESHA=", "http": {"method": "POST", "path": "/v1/analyze"}},
        "body": json.dumps({"image_key": KEY}),
        "isBase64Encoded": False,
    }
    assert analyze.handler(event, lambda_context)["statusCode"] == 504


def test_not_an_api_gateway_event_is_500(lambda_context):
    from vlp.handlers import analyze

    response = analyze.handler({"detail-type": "Scheduled Event"}, lambda_context)
    assert response["statusCode"] == 500 and response_json(response)["error"]["code"] == "INTERNAL_ERROR"


# ---- jobs ----


def test_job_submission_starts_the_standard_machine(s3, jobs_stub, lambda_context):
    from vlp.handlers import jobs

    jobs_stub.add_response(
        "start_execution",
        {"executionArn": JOBS_STATE_MACHINE_ARN.replace("stateMachine", "execution") + ":x", "startDate": NOW},
        {"stateMachineArn": JOBS_STATE_MACHINE_ARN, "name": ANY, "input": ANY},
    )
    response = jobs.handler(api_event({"image_key": KEY, "task": "describe"}, path="/v1/jobs"), lambda_context)
    assert response["statusCode"] == 202
    body = JobAccepted.model_validate(response_json(response)).model_dump()
    assert response["headers"]["Location"] == f"/v1/jobs/{body['job_id']}" == body["status_url"]


def _describe(jobs_stub, job_id: str, status: str, caller: str = ANON, recorded: str | None = None, **fields):
    """DescribeExecution of ``caller``'s job (named ``<caller>-<job id>``), whose input records ``recorded``."""
    arn = JOBS_STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + f":{caller}-{job_id}"
    document = {"request_id": job_id, "caller": recorded or caller}
    jobs_stub.add_response(
        "describe_execution",
        {
            "executionArn": arn,
            "stateMachineArn": JOBS_STATE_MACHINE_ARN,
            "status": status,
            "startDate": NOW,
            "input": json.dumps(document),
            **fields,
        },
        {"executionArn": arn},
    )


JOB_ID = "3f1c0f9e-2b7d-4c1a-9d7e-0a1b2c3d4e5f"
OTHER = caller_of({"apiKeyId": "another-callers-key"})


@pytest.mark.parametrize(
    ("status", "fields", "view_status"),
    [
        ("RUNNING", {}, "running"),
        ("PENDING_REDRIVE", {}, "queued"),
        ("SUCCEEDED", {"stopDate": NOW, "output": json.dumps(result_document(JOB_ID, with_mask=True))}, "succeeded"),
        (
            "FAILED",
            {
                "stopDate": NOW,
                "error": "CallerError",
                "cause": lambda_cause(CallerError("The image is corrupt or truncated.", code="INVALID_IMAGE")),
            },
            "failed",
        ),
        ("TIMED_OUT", {"stopDate": NOW}, "failed"),
        ("ABORTED", {"stopDate": NOW}, "failed"),
    ],
)
def test_job_status(s3, jobs_stub, lambda_context, status, fields, view_status):
    from vlp.handlers import jobs

    _describe(jobs_stub, JOB_ID, status, **fields)
    response = jobs.handler(
        api_event(method="GET", path=f"/v1/jobs/{JOB_ID}", path_parameters={"id": JOB_ID}), lambda_context
    )
    assert response["statusCode"] == 200
    body = JobStatus.model_validate(response_json(response)).model_dump()
    assert body["status"] == view_status and body["job_id"] == JOB_ID
    assert body["created_at"] == "2024-05-01T12:00:00+00:00"
    if status == "SUCCEEDED":
        assert body["result"]["detections"][0]["mask"]["url"].startswith("https://")
    elif view_status == "failed":
        expected = {"FAILED": "INVALID_IMAGE", "TIMED_OUT": "PIPELINE_TIMEOUT", "ABORTED": "JOB_ABORTED"}[status]
        assert body["error"]["code"] == expected and "result" not in response_json(response)
    else:
        assert body["result"] is None and body["error"] is None


def test_unknown_job_is_404(s3, jobs_stub, lambda_context):
    from vlp.handlers import jobs

    arn = JOBS_STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + f":{ANON}-{JOB_ID}"
    jobs_stub.add_client_error(
        "describe_execution", service_error_code="ExecutionDoesNotExist", expected_params={"executionArn": arn}
    )
    response = jobs.handler(api_event(method="GET", path_parameters={"id": JOB_ID}), lambda_context)
    assert response["statusCode"] == 404 and response_json(response)["error"]["code"] == "JOB_NOT_FOUND"


def test_a_job_whose_input_records_another_caller_is_404(s3, jobs_stub, lambda_context):
    """Defence in depth: even an execution found under the caller's name must record that caller in its input."""
    from vlp.handlers import jobs

    _describe(jobs_stub, JOB_ID, "SUCCEEDED", recorded=OTHER, output=json.dumps(result_document(JOB_ID)))
    response = jobs.handler(api_event(method="GET", path_parameters={"id": JOB_ID}), lambda_context)
    assert response["statusCode"] == 404 and response_json(response)["error"]["code"] == "JOB_NOT_FOUND"
    assert "result" not in response_json(response)


def test_only_result_keys_of_the_request_are_signed():
    from vlp.api.results import attach_urls

    class Signer:
        def generate_presigned_url(self, *args, **kwargs):
            return "https://signed/" + kwargs["Params"]["Key"]

    result = {
        "request_id": JOB_ID,
        "detections": [
            {"mask": {"key": f"results/{ANON}/{JOB_ID}/mask-0.png"}},
            {"mask": {"key": "results/another-request/mask-0.png"}},
            {"mask": {"key": "uploads/x/secret.jpg"}},
            {"mask": {"key": f"results/{OTHER}/{JOB_ID}/mask-0.png"}},  # the same request id, another caller
            {"mask": {"key": f"results/{JOB_ID}/mask-0.png"}},  # the old layout, without a caller
        ],
        "masks_rle": {"key": f"results/{ANON}/{JOB_ID}/masks-rle.json"},
    }
    attach_urls(result, s3=Signer(), bucket=BUCKET, caller=ANON, expires_in=60)
    assert [d["mask"].get("url") for d in result["detections"]] == [
        f"https://signed/results/{ANON}/{JOB_ID}/mask-0.png",
        None,
        None,
        None,
        None,
    ]
    assert result["masks_rle"]["url"].endswith("masks-rle.json")
