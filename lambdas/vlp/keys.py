"""The S3 layout of the requests bucket (stacks/constants.py: UPLOADS_PREFIX, INPUTS_PREFIX, RESULTS_PREFIX).

    uploads/<uuid>/<kind>.<ext>        what callers upload with a presigned POST (/v1/uploads)
    inputs/<request id>/source.<ext>   an inline (base64) image, written by the validate step
    inputs/<request id>/image.jpg      the normalised image (RGB, long side <= 2048), sent to the DJL models
    inputs/<request id>/vlm.jpg        a smaller copy for the VLM (long side <= 1024)
    results/<request id>/mask-<n>.png  segmentation masks
    results/<request id>/masks-rle.json  COCO RLE of every mask, when too large to travel inline

Callers may reference objects under ``uploads/`` and ``inputs/`` only, and only with keys shaped as this API
issues them (a UUID folder and a plain file name): no ``..``, no other prefixes, no other buckets.
"""

from __future__ import annotations

import re

UPLOADS_PREFIX = "uploads/"
INPUTS_PREFIX = "inputs/"
RESULTS_PREFIX = "results/"

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_RE = re.compile(rf"^{UUID_PATTERN}$")
CALLER_KEY_PATTERN = rf"^(uploads|inputs)/{UUID_PATTERN}/[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}(\.[A-Za-z0-9]{{1,8}})?$"
CALLER_KEY_RE = re.compile(CALLER_KEY_PATTERN)


def new_id() -> str:
    import uuid  # only the API functions mint ids

    return str(uuid.uuid4())


def is_caller_key(key: str) -> bool:
    return bool(CALLER_KEY_RE.match(key))


def upload_key(kind: str, extension: str, upload_id: str | None = None) -> str:
    return f"{UPLOADS_PREFIX}{upload_id or new_id()}/{kind}.{extension}"


def input_key(request_id: str, name: str) -> str:
    return f"{INPUTS_PREFIX}{request_id}/{name}"


def result_key(request_id: str, name: str) -> str:
    return f"{RESULTS_PREFIX}{request_id}/{name}"
