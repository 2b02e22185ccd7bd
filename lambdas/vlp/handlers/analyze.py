"""POST /v1/analyze -> StartSyncExecution on the Express state machine -> the assembled result (docs/api.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp import aws
from vlp.api.idempotency import caller_prefix_of
from vlp.keys import new_id
from vlp.runtime import api_handler, logger
from vlp.settings import AnalyzeSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from vlp.http import ApiEvent

SETTINGS: AnalyzeSettings = load_settings(AnalyzeSettings)
SFN = aws.stepfunctions_client(sync=True)
S3 = aws.s3_client()  # signs the result URLs (masks)
MAX_BODY_BYTES = 512 * 1024


@api_handler("analyze", cors_origins=SETTINGS.cors_origins)
def handler(event: ApiEvent, context: LambdaContext) -> dict[str, Any]:
    # the request models (pydantic) load at the first request, not in the init phase (bench/cold_start.py)
    from vlp.api.executions import execution_input, run_sync, sync_result
    from vlp.api.models import AnalyzeRequest, parse_body
    from vlp.http import execution_error_response, json_response
    from vlp.requests import jobs_only_error

    request = parse_body(AnalyzeRequest, event.body_bytes(MAX_BODY_BYTES))
    jobs_only = jobs_only_error(request.task)  # restyle: the Express machine has no branch for it
    if jobs_only is not None:
        raise jobs_only
    request_id = new_id()
    logger.append_keys(pipeline_request_id=request_id)
    caller = caller_prefix_of(event, SETTINGS.requests_bucket)
    payload = execution_input(
        request, caller=caller, request_id=request_id, api_request_id=event.request_id, source="analyze"
    )
    response = run_sync(SFN, state_machine_arn=SETTINGS.state_machine_arn, request_id=request_id, payload=payload)
    status, result, error = sync_result(
        response, s3=S3, bucket=SETTINGS.requests_bucket, caller=caller, expires_in=SETTINGS.presign_expiry_seconds
    )
    if error is not None:
        logger.info("execution did not succeed", extra={"execution_status": response.get("status"), "error": error})
        return execution_error_response(error, request_id=request_id)
    return json_response(status, result, request_id=request_id)
