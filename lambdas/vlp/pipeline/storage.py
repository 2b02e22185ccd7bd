"""S3 reads and writes of the pipeline, with S3 errors mapped to domain errors:
missing object -> CallerError UPLOAD_NOT_FOUND; throttling/5xx after the SDK's retries -> DependencyError
(retried by the state machine); anything else (access denied, KMS) -> VlpError INTERNAL_ERROR."""

from __future__ import annotations

from typing import Any

from vlp.errors import CallerError, DependencyError, VlpError

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException"}


def not_found(key: str) -> CallerError:
    """UPLOAD_NOT_FOUND: a missing object, and a key under another caller's prefix (the same answer for both)."""
    return CallerError(f"No object at '{key}': upload it first (POST /v1/uploads).", code="UPLOAD_NOT_FOUND")


def _error(error: Exception, key: str) -> VlpError:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NOT_FOUND and code != "NoSuchBucket":
            return not_found(key)
        if code in _TRANSIENT or status >= 500:
            return DependencyError(f"S3 is unavailable ({code}).")
        return VlpError(f"S3 refused the request ({code or status}).", code="INTERNAL_ERROR")
    return DependencyError(f"S3 could not be reached ({type(error).__name__}).")


def read(
    s3: Any,
    bucket: str,
    key: str,
    *,
    max_bytes: int | None = None,
    too_large: str = "IMAGE_TOO_LARGE",
    byte_range: str | None = None,
) -> bytes:
    """The object's bytes; ``too_large`` (a 413 code) when it is above ``max_bytes`` (checked before reading)."""
    from botocore.exceptions import BotoCoreError, ClientError

    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if byte_range:
        params["Range"] = byte_range
    try:
        response = s3.get_object(**params)
        length = response.get("ContentLength")
        if max_bytes is not None and isinstance(length, int) and length > max_bytes:
            response["Body"].close()
            raise CallerError(f"The file is {length} bytes, above the {max_bytes} allowed.", code=too_large)
        data = response["Body"].read() if max_bytes is None else response["Body"].read(max_bytes + 1)
    except (BotoCoreError, ClientError) as error:
        raise _error(error, key) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise CallerError(f"The file is above the {max_bytes} bytes allowed.", code=too_large)
    return data


def write(s3: Any, bucket: str, key: str, data: bytes, content_type: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    except (BotoCoreError, ClientError) as error:
        raise _error(error, key) from None
