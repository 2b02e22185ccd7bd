"""The S3 layout of the requests bucket (stacks/constants.py: UPLOADS_PREFIX, INPUTS_PREFIX, RESULTS_PREFIX).

    uploads/<caller>/<uuid>/<kind>.<ext>               what callers upload with a presigned POST (/v1/uploads)
    inputs/<caller>/<request id>/source.<ext>          an inline (base64) image, written by the validate step
    inputs/<caller>/<request id>/image.jpg             the normalised image (RGB, long side <= 2048)
    inputs/<caller>/<request id>/vlm.jpg               a smaller copy for the VLM (long side <= 1024)
    inputs/<caller>/<request id>/audio.<ext>           the validated copy of the audio (the ASR step reads it)
    results/<caller>/<request id>/mask-<n>.png         segmentation masks
    results/<caller>/<request id>/masks-rle.json       COCO RLE of every mask, when too large to travel inline

``<caller>`` is a caller prefix: the first 128 bits (32 hex digits) of HMAC-SHA256 over the caller's identity
(``vlp.api.idempotency.caller_scope``: Cognito ``sub``, IAM principal, API key id, or ``anonymous``), keyed with
a per-stack salt (the requests bucket's name). The identity itself never appears in a key. Isolation does not
rest on the prefix being secret: the API functions compute it from the request's authenticated identity, put it
into the execution input, and the pipeline refuses keys under any other prefix (docs/decisions.md).

Callers may reference objects under ``uploads/<their prefix>/`` and ``inputs/<their prefix>/`` only, and only with
keys shaped as this API issues them (a UUID folder and a plain file name): no ``..``, no other prefixes, no other
buckets. A well-formed key under another caller's prefix is answered like a missing one (UPLOAD_NOT_FOUND).
"""

from __future__ import annotations

import hashlib
import hmac
import re

UPLOADS_PREFIX = "uploads/"
INPUTS_PREFIX = "inputs/"
RESULTS_PREFIX = "results/"

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_RE = re.compile(rf"^{UUID_PATTERN}$")
CALLER_PATTERN = r"[0-9a-f]{32}"
CALLER_RE = re.compile(rf"^{CALLER_PATTERN}$")
CALLER_KEY_PATTERN = (
    rf"^(uploads|inputs)/{CALLER_PATTERN}/{UUID_PATTERN}/[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}(\.[A-Za-z0-9]{{1,8}})?$"
)
CALLER_KEY_RE = re.compile(CALLER_KEY_PATTERN)
_SALT_CONTEXT = b"vlp/caller-prefix/v1/"


def new_id() -> str:
    import uuid  # only the API functions mint ids

    return str(uuid.uuid4())


def caller_prefix(identity: str, salt: str) -> str:
    """The caller's key prefix: HMAC-SHA256(salt, identity), first 32 hex digits."""
    digest = hmac.new(_SALT_CONTEXT + salt.encode("utf-8"), identity.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:32]


def is_caller_key(key: str) -> bool:
    return bool(CALLER_KEY_RE.fullmatch(key))  # fullmatch: `$` alone would let a trailing newline through


def key_caller(key: str) -> str | None:
    """The caller prefix of a caller key (``uploads/<caller>/...``, ``inputs/<caller>/...``); None otherwise."""
    if not is_caller_key(key):
        return None
    return key.split("/", 2)[1]


def owns(caller: str, key: str) -> bool:
    """Whether ``key`` is a caller key under ``caller``'s prefix (constant-time comparison of the prefix)."""
    found = key_caller(key)
    return found is not None and hmac.compare_digest(found, caller)


def upload_key(caller: str, kind: str, extension: str, upload_id: str | None = None) -> str:
    return f"{UPLOADS_PREFIX}{caller}/{upload_id or new_id()}/{kind}.{extension}"


def upload_prefix(caller: str) -> str:
    return f"{UPLOADS_PREFIX}{caller}/"


def input_key(caller: str, request_id: str, name: str) -> str:
    return f"{INPUTS_PREFIX}{caller}/{request_id}/{name}"


def input_prefix(caller: str, request_id: str) -> str:
    return f"{INPUTS_PREFIX}{caller}/{request_id}/"


def result_key(caller: str, request_id: str, name: str) -> str:
    return f"{RESULTS_PREFIX}{caller}/{request_id}/{name}"


def result_prefix(caller: str, request_id: str) -> str:
    return f"{RESULTS_PREFIX}{caller}/{request_id}/"
