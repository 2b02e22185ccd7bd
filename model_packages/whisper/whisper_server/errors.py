"""The one error type the request path raises: the shared ContainerError (model_packages/shared/vlp_errors.py) with
the Whisper server's statuses."""

from __future__ import annotations

from vlp_errors import ContainerError

# The status of each code the server answers with (docs/model-contracts.md, "Whisper").
STATUS_BY_CODE = {
    "INVALID_JSON": 400,
    "INVALID_REQUEST": 400,
    "INVALID_OPTION": 400,
    "UNDECODABLE_AUDIO": 400,
    "BAD_REQUEST": 400,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "AUDIO_TOO_LARGE": 413,
    "AUDIO_TOO_LONG": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "MODEL_FAILURE": 500,
    "MODEL_NOT_READY": 503,
    "SERVER_BUSY": 503,
}


class ApiError(ContainerError):
    """A request the container refuses: `{"error": {"code", "message"}}` under `status` (the code's, by default)."""

    statuses = STATUS_BY_CODE
