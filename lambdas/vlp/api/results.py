"""Presigned GET URLs for the result objects of a finished request (masks, the overlay, the restyled PNG), added
at response time.

The state machine's output carries S3 keys only; URLs are signed when a response is built, so a job fetched
hours later still gets working links. Only keys under ``results/<caller>/<request id>/`` are ever signed, where
``caller`` is the prefix of the caller asking (never one read from the result).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from vlp.errors import CallerError, VlpError
from vlp.keys import UUID_RE, result_prefix


def _sign(s3: Any, bucket: str, key: str, expires_in: int) -> str:
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in, HttpMethod="GET"
    )


def attach_urls(
    result: dict[str, Any], *, s3: Any, bucket: str, caller: str, expires_in: int, now: float | None = None
) -> dict:
    """Add ``url`` next to every result ``key`` (in place) and ``urls_expire_at``; returns ``result``."""
    request_id = result.get("request_id")
    if not isinstance(request_id, str) or not UUID_RE.fullmatch(request_id):
        return result
    prefix = result_prefix(caller, request_id)
    signed = 0

    def sign(holder: Any) -> None:
        nonlocal signed
        if isinstance(holder, dict) and isinstance(holder.get("key"), str) and holder["key"].startswith(prefix):
            holder["url"] = _sign(s3, bucket, holder["key"], expires_in)
            signed += 1

    for detection in result.get("detections") or []:
        if isinstance(detection, dict):
            sign(detection.get("mask"))
    sign(result.get("masks_rle"))
    sign(result.get("overlay"))
    restyle = result.get("restyle")
    if isinstance(restyle, dict):
        sign(restyle.get("restyled"))
    if signed:
        issued = time.time() if now is None else now
        result["urls_expire_at"] = datetime.fromtimestamp(issued + expires_in, tz=UTC).isoformat(timespec="seconds")
    return result


def read_job_result(output: dict[str, Any], *, s3: Any, bucket: str, caller: str, job_id: str) -> dict[str, Any]:
    """A finished job's result document (``results/<caller>/<job id>/result.json``, written by the assemble step):
    the execution output names it; only the asking caller's own key is read. Expired with the bucket's lifecycle:
    404 JOB_NOT_FOUND, like a job whose history has expired."""
    from vlp.pipeline import stored

    key = stored.job_result_key(caller, job_id)
    if output.get("result_key") != key:
        raise VlpError("The job's result is not where it belongs.", code="PIPELINE_FAILED")
    try:
        return stored.read_json(s3, bucket, key)
    except CallerError:  # storage: a missing object
        raise CallerError("The job's result has expired.", code="JOB_NOT_FOUND") from None
    except ValueError:  # not JSON, or not an object
        raise VlpError("The job's result is unreadable.", code="PIPELINE_FAILED") from None
