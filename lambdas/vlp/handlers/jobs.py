"""POST /v1/jobs -> StartExecution on the Standard state machine (202 + job id), at most once per
Idempotency-Key (vlp.api.idempotency); GET /v1/jobs/{id} -> DescribeExecution (status, result or error).
docs/api.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp import aws
from vlp.api.idempotency import IdempotentJobs, caller_prefix_of, caller_scope, idempotency_key
from vlp.errors import CallerError
from vlp.keys import new_id
from vlp.runtime import api_handler, logger
from vlp.settings import JobsSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from vlp.api.models import AnalyzeRequest
    from vlp.http import ApiEvent

SETTINGS: JobsSettings = load_settings(JobsSettings)
SFN = aws.stepfunctions_client()
S3 = aws.s3_client()  # the request and result documents; signs the result URLs (masks)
MAX_BODY_BYTES = 512 * 1024
IDEMPOTENT = IdempotentJobs(SETTINGS.idempotency_table, aws.dynamodb_client)  # DynamoDB client at first use


def _start(request: AnalyzeRequest, event: ApiEvent) -> dict[str, Any]:
    from vlp.api.executions import execution_input, start_job, store_job_request

    job_id = new_id()
    caller = caller_prefix_of(event, SETTINGS.requests_bucket)
    logger.append_keys(job_id=job_id)
    payload = execution_input(request, caller=caller, request_id=job_id, api_request_id=event.request_id, source="jobs")
    payload = store_job_request(S3, bucket=SETTINGS.requests_bucket, payload=payload)  # no user data in the history
    start_job(SFN, state_machine_arn=SETTINGS.jobs_state_machine_arn, caller=caller, job_id=job_id, payload=payload)
    return {"job_id": job_id}


def _submit(event: ApiEvent, context: LambdaContext) -> dict[str, Any]:
    # the request models (pydantic) load at the first request, not in the init phase (bench/cold_start.py)
    from vlp.api.models import AnalyzeRequest, parse_body
    from vlp.http import json_response

    key = idempotency_key(event)
    request = parse_body(AnalyzeRequest, event.body_bytes(MAX_BODY_BYTES))
    headers: dict[str, str] = {}
    if key is None:
        job = _start(request, event)
    else:
        job, replayed = IDEMPOTENT.submit(
            caller=caller_scope(event),
            key=key,
            request=request.model_dump(mode="json"),
            start=lambda: _start(request, event),
            lambda_context=context,
        )
        if replayed:
            logger.append_keys(job_id=job["job_id"])
            logger.info("idempotent replay", extra={"idempotency_key_chars": len(key)})
            headers["Idempotent-Replayed"] = "true"
    location = f"/v1/jobs/{job['job_id']}"
    body = {"job_id": job["job_id"], "status": "queued", "status_url": location}
    return json_response(202, body, request_id=event.request_id, headers={"Location": location, **headers})


def _status(event: ApiEvent) -> dict[str, Any]:
    from vlp.api.executions import describe_job, job_view
    from vlp.http import json_response

    job_id = event.path_parameter("id") or event.path_parameter("job_id") or ""
    logger.append_keys(job_id=job_id)
    caller = caller_prefix_of(event, SETTINGS.requests_bucket)
    description = describe_job(SFN, state_machine_arn=SETTINGS.jobs_state_machine_arn, caller=caller, job_id=job_id)
    body = job_view(
        description,
        job_id=job_id,
        s3=S3,
        bucket=SETTINGS.requests_bucket,
        caller=caller,
        expires_in=SETTINGS.presign_expiry_seconds,
    )
    return json_response(200, body, request_id=event.request_id)


@api_handler("jobs", cors_origins=SETTINGS.cors_origins)
def handler(event: ApiEvent, context: LambdaContext) -> dict[str, Any]:
    if event.method == "POST":
        return _submit(event, context)
    if event.method == "GET":
        return _status(event)
    raise CallerError(f"{event.method or 'This method'} is not allowed here.", code="METHOD_NOT_ALLOWED")
