"""The one error type the request path raises: it carries the HTTP status and the machine-readable code."""

from __future__ import annotations


class ApiError(Exception):
    """A request the container refuses: `{"error": {"code", "message"}}` under `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "UNSUPPORTED_MEDIA_TYPE", message)


def undecodable_audio(message: str) -> ApiError:
    return ApiError(400, "UNDECODABLE_AUDIO", message)


def audio_too_large(message: str) -> ApiError:
    return ApiError(413, "AUDIO_TOO_LARGE", message)


def audio_too_long(message: str) -> ApiError:
    return ApiError(413, "AUDIO_TOO_LONG", message)


def invalid_option(message: str) -> ApiError:
    return ApiError(400, "INVALID_OPTION", message)


def invalid_json(message: str) -> ApiError:
    return ApiError(400, "INVALID_JSON", message)


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "INVALID_REQUEST", message)
