"""Starting pipeline executions (POST /v1/analyze, POST /v1/jobs), reading them (GET /v1/jobs/{id}), and
turning their outcome into HTTP responses. Same execution input for the Express and the Standard machine.

Every execution carries its caller's prefix (``caller``, vlp.keys.caller_prefix), set here from the request's
authenticated identity and never from its body. A job's execution is named ``<caller>-<job id>``: GET /v1/jobs/{id}
looks the job up under the asking caller's prefix only, so another caller's job id is ``404 JOB_NOT_FOUND``
exactly like an unknown one (and the execution input's ``caller`` is checked once more).

A job's user data never enters the Standard machine's history (kept 90 days, vlp.pipeline.stored): its request
goes to ``inputs/<caller>/<job id>/request.json`` and the execution starts with ids and that key only
(``store_job_request``); its result is read back from ``results/<caller>/<job id>/result.json``.
"""

from __future__ import annotations

import hmac
import json
import time
from datetime import datetime
from typing import Any

from vlp.api.models import AnalyzeRequest
from vlp.api.results import attach_urls, read_job_result
from vlp.errors import CallerError, VlpError, error_from_execution
from vlp.keys import CALLER_RE, UUID_RE

# Step Functions limits an execution input to 256 KiB; keep room for what the machine adds.
MAX_EXECUTION_INPUT_BYTES = 250_000

JOB_STATUS = {
    "RUNNING": "running",
    "PENDING_REDRIVE": "queued",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "failed",
}


def execution_input(
    request: AnalyzeRequest,
    *,
    caller: str,
    request_id: str,
    api_request_id: str | None,
    source: str,
    now: float | None = None,
) -> str:
    """The execution input JSON (docs/pipeline.md, "Execution input"); 413 when above the state budget."""
    document = {
        "request_id": request_id,
        "caller": caller,
        "api_request_id": api_request_id,
        "received_at_ms": int((time.time() if now is None else now) * 1000),
        "source": source,
        "request": request.model_dump(mode="json", exclude_none=True),
    }
    payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    size = len(payload.encode("utf-8"))
    if size > MAX_EXECUTION_INPUT_BYTES:
        raise CallerError(
            f"The request is {size} bytes once prepared, above the pipeline's {MAX_EXECUTION_INPUT_BYTES}: "
            "upload the image with POST /v1/uploads and send fewer or shorter labels.",
            code="REQUEST_TOO_LARGE",
        )
    return payload


def store_job_request(s3: Any, *, bucket: str, payload: str) -> str:
    """A jobs execution input without user data: the request is written to ``inputs/<caller>/<job id>/request.json``
    (KMS, the bucket's default encryption) and the input keeps the ids and that key (``stored``, merged back by the
    validate step's wrapper)."""
    from vlp.pipeline import stored

    document = json.loads(payload)
    key = stored.request_key(document["caller"], document["request_id"])
    stored.write_json(s3, bucket, key, {"request": document.pop("request")})
    return json.dumps({**document, stored.STORED: key}, separators=(",", ":"))


def _start_error(error: Exception) -> VlpError:
    from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

    if isinstance(error, ReadTimeoutError):
        return VlpError("The pipeline did not answer in time; use POST /v1/jobs.", code="PIPELINE_TIMEOUT")
    if isinstance(error, ConnectTimeoutError) or not isinstance(error, ClientError):
        return VlpError("The pipeline could not be reached; retry shortly.", code="PIPELINE_UNAVAILABLE", retry_after=2)
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in ("ThrottlingException", "ExecutionLimitExceeded", "TooManyRequestsException"):
        return CallerError("Too many requests are running; retry with backoff.", code="THROTTLED", retry_after=2)
    if code == "InvalidExecutionInput":
        return CallerError("The request is too large for the pipeline.", code="REQUEST_TOO_LARGE")
    if status >= 500 or code in ("ServiceUnavailable", "InternalFailure", "InternalServerError"):
        return VlpError("The pipeline could not be started; retry shortly.", code="PIPELINE_UNAVAILABLE", retry_after=2)
    # StateMachineDoesNotExist, AccessDenied, InvalidArn...: a deployment problem, logged with its code.
    return VlpError(f"The pipeline could not be started ({code or 'unknown error'}).", code="INTERNAL_ERROR")


def run_sync(sfn: Any, *, state_machine_arn: str, request_id: str, payload: str) -> dict[str, Any]:
    """StartSyncExecution on the Express machine; returns the API's response fields."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return sfn.start_sync_execution(stateMachineArn=state_machine_arn, name=request_id, input=payload)
    except (BotoCoreError, ClientError) as error:
        raise _start_error(error) from None


def job_execution_name(caller: str, job_id: str) -> str:
    """A job's execution name: ``<caller prefix>-<job id>`` (69 characters; Step Functions allows 80)."""
    if not CALLER_RE.fullmatch(caller):
        raise ValueError("not a caller prefix")
    return f"{caller}-{job_id}"


def start_job(sfn: Any, *, state_machine_arn: str, caller: str, job_id: str, payload: str) -> str:
    """StartExecution on the Standard machine, named ``<caller>-<job id>``. Returns the execution ARN."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=job_execution_name(caller, job_id), input=payload
        )
    except (BotoCoreError, ClientError) as error:
        raise _start_error(error) from None
    return response["executionArn"]


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name>."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def _owned_by(description: dict[str, Any], caller: str) -> bool:
    try:
        recorded = json.loads(description.get("input") or "").get("caller")
    except (ValueError, AttributeError):
        return False
    return isinstance(recorded, str) and hmac.compare_digest(recorded, caller)


def describe_job(sfn: Any, *, state_machine_arn: str, caller: str, job_id: str) -> dict[str, Any]:
    """DescribeExecution of the caller's job; 404 JOB_NOT_FOUND for an id that is malformed, unknown, or
    another caller's (the same answer for all three)."""
    from botocore.exceptions import BotoCoreError, ClientError

    not_found = CallerError("No job with this id.", code="JOB_NOT_FOUND")
    if not UUID_RE.fullmatch(job_id or ""):
        raise not_found
    try:
        description = sfn.describe_execution(
            executionArn=execution_arn(state_machine_arn, job_execution_name(caller, job_id))
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "InvalidArn"):
            raise not_found from None
        raise _start_error(error) from None
    except BotoCoreError as error:
        raise _start_error(error) from None
    if not _owned_by(description, caller):
        raise not_found
    return description


def _output(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "")
    except ValueError:
        raise VlpError("The pipeline returned an unreadable result.", code="PIPELINE_FAILED") from None
    if not isinstance(value, dict):
        raise VlpError("The pipeline returned an unreadable result.", code="PIPELINE_FAILED")
    return value


def outcome_error(status: str, error: str | None, cause: str | None) -> dict[str, Any]:
    """The caller-facing error of an execution that did not succeed."""
    if status == "TIMED_OUT":
        return error_from_execution("States.Timeout", None)
    if status == "ABORTED":
        return {"code": "JOB_ABORTED", "message": "The job was stopped before it finished.", "status": 500}
    return error_from_execution(error, cause)


def sync_result(
    response: dict[str, Any], *, s3: Any, bucket: str, caller: str, expires_in: int
) -> tuple[int, dict[str, Any] | None, dict[str, Any] | None]:
    """(HTTP status, result or None, error or None) of a StartSyncExecution response."""
    status = response.get("status")
    if status == "SUCCEEDED":
        result = attach_urls(
            _output(response.get("output")), s3=s3, bucket=bucket, caller=caller, expires_in=expires_in
        )
        return 200, result, None
    error = outcome_error(status or "FAILED", response.get("error"), response.get("cause"))
    return error["status"], None, error


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else None


def job_view(
    description: dict[str, Any], *, job_id: str, s3: Any, bucket: str, caller: str, expires_in: int
) -> dict[str, Any]:
    """The GET /v1/jobs/{id} body: status, and the result or the error once the job is done."""
    raw_status = description.get("status", "RUNNING")
    view: dict[str, Any] = {
        "job_id": job_id,
        "status": JOB_STATUS.get(raw_status, "running"),
        "created_at": _iso(description.get("startDate")),
        "completed_at": _iso(description.get("stopDate")),
    }
    if raw_status == "SUCCEEDED":
        output = _output(description.get("output"))
        if "result_key" in output:  # the job's result is in S3, not in the history (vlp.pipeline.stored)
            output = read_job_result(output, s3=s3, bucket=bucket, caller=caller, job_id=job_id)
        view["result"] = attach_urls(output, s3=s3, bucket=bucket, caller=caller, expires_in=expires_in)
    elif view["status"] == "failed":
        view["error"] = outcome_error(raw_status, description.get("error"), description.get("cause"))
    return {key: value for key, value in view.items() if value is not None}
