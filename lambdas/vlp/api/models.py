"""Request bodies of the HTTP API (pydantic). openapi/vlp-api.json is generated from these models and from
vlp.requests (the analysis request, shared with the pipeline; ``openapi/build.py``); a test fails when the two
drift apart.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from vlp.errors import CallerError
from vlp.requests import (
    MAX_INLINE_IMAGE_BYTES,
    MAX_TEXT_CHARS,
    AnalyzeOptions,
    AnalyzeRequest,
    Task,
    Turn,
    _Strict,
    caller_error,
)

__all__ = [
    "MAX_INLINE_IMAGE_BYTES",
    "MAX_TEXT_CHARS",
    "AnalyzeOptions",
    "AnalyzeRequest",
    "Task",
    "Turn",
    "UploadRequest",
    "caller_error",
    "parse_body",
]

IMAGE_CONTENT_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
AUDIO_CONTENT_TYPES = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
}


class UploadRequest(_Strict):
    """Ask for a presigned POST to upload one image or audio file."""

    kind: Literal["image", "audio"] = Field(description="What will be uploaded.")
    content_type: str = Field(
        min_length=1,
        max_length=100,
        description="MIME type of the file; the POST policy enforces it. Images: image/jpeg, image/png, "
        "image/webp. Audio: audio/wav (audio/x-wav), audio/mpeg, audio/flac, audio/ogg, audio/webm.",
        examples=["image/jpeg"],
    )

    @model_validator(mode="after")
    def _known_type(self) -> UploadRequest:
        allowed = IMAGE_CONTENT_TYPES if self.kind == "image" else AUDIO_CONTENT_TYPES
        if self.content_type.lower() not in allowed:
            raise PydanticCustomError(
                "UNSUPPORTED_MEDIA_TYPE",
                "content_type {ct} is not accepted for {kind}; use one of {allowed}",
                {"ct": self.content_type, "kind": self.kind, "allowed": ", ".join(sorted(allowed))},
            )
        return self

    @property
    def extension(self) -> str:
        table = IMAGE_CONTENT_TYPES if self.kind == "image" else AUDIO_CONTENT_TYPES
        return table[self.content_type.lower()]


_M = TypeVar("_M", bound=BaseModel)


def parse_body(model: type[_M], body: bytes, *, what: str = "request") -> _M:
    """Validate a JSON body against ``model``; a CallerError with a precise code otherwise."""
    if not body.strip():
        raise CallerError(f"The {what} body is empty: send a JSON object.", code="INVALID_JSON")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise caller_error(error, what=what) from None
