"""POST /v1/uploads -> a presigned POST (docs/api.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp import aws
from vlp.api.idempotency import caller_prefix_of
from vlp.runtime import api_handler
from vlp.settings import UploadsSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from vlp.http import ApiEvent

SETTINGS: UploadsSettings = load_settings(UploadsSettings)
S3 = aws.s3_client()
MAX_BODY_BYTES = 4096


@api_handler("uploads", cors_origins=SETTINGS.cors_origins)
def handler(event: ApiEvent, context: LambdaContext) -> dict[str, Any]:
    # the request models (pydantic) load at the first request, not in the init phase (bench/cold_start.py)
    from vlp.api.models import UploadRequest, parse_body
    from vlp.api.uploads import max_bytes_for, presign_upload
    from vlp.http import json_response

    request = parse_body(UploadRequest, event.body_bytes(MAX_BODY_BYTES), what="upload request")
    limit = max_bytes_for(
        request.kind,
        max_upload_bytes=SETTINGS.max_upload_bytes,
        max_image_bytes=SETTINGS.max_image_bytes,
        max_audio_bytes=SETTINGS.max_audio_bytes,
    )
    body = presign_upload(
        S3,
        bucket=SETTINGS.requests_bucket,
        caller=caller_prefix_of(event, SETTINGS.requests_bucket),
        request=request,
        max_bytes=limit,
        expires_in=SETTINGS.presign_expiry_seconds,
    )
    return json_response(201, body, request_id=event.request_id)
