"""POST /v1/uploads: a presigned POST into the requests bucket, size and content type enforced by its policy."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from vlp.api.models import UploadRequest
from vlp.errors import DependencyError
from vlp.keys import upload_key, upload_prefix


def max_bytes_for(kind: str, *, max_upload_bytes: int, max_image_bytes: int, max_audio_bytes: int) -> int:
    """The upload limit of one kind: the environment's MAX_UPLOAD_BYTES, capped by what the pipeline accepts."""
    return min(max_upload_bytes, max_image_bytes if kind == "image" else max_audio_bytes)


def presign_upload(
    s3: Any,
    *,
    bucket: str,
    caller: str,
    request: UploadRequest,
    max_bytes: int,
    expires_in: int,
    now: float | None = None,
) -> dict[str, Any]:
    """``{"url", "fields", "key", ...}``: POST ``fields`` + the file (as the last form field ``file``) to ``url``.

    The key lies under the caller's prefix (``uploads/<caller>/<uuid>/``). The policy pins the key (and says
    ``starts-with`` the caller's prefix), the Content-Type (exactly) and the size (1..max_bytes bytes); S3 rejects any
    other upload with 403 (policy) or 400 (EntityTooLarge / EntityTooSmall).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    content_type = request.content_type.lower()
    key = upload_key(caller, request.kind, request.extension)
    try:
        post = s3.generate_presigned_post(
            Bucket=bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                ["starts-with", "$key", upload_prefix(caller)],
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires_in,
        )
    except (BotoCoreError, ClientError) as error:  # signing is local; this is a credentials problem
        raise DependencyError(f"Could not sign the upload: {type(error).__name__}") from None
    issued = time.time() if now is None else now
    return {
        "url": post["url"],
        "fields": post["fields"],
        "key": key,
        "kind": request.kind,
        "content_type": content_type,
        "max_bytes": max_bytes,
        "expires_in": expires_in,
        "expires_at": datetime.fromtimestamp(issued + expires_in, tz=UTC).isoformat(timespec="seconds"),
    }
