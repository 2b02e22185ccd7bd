"""The one exception type of the client."""

from __future__ import annotations

from typing import Any

# Problems found before any request is sent (a missing file, bad arguments, no credentials): the caller's to fix,
# like a 4xx, so the command line exits 2 for them too.
LOCAL_CODES = frozenset(
    {
        "INVALID_ARGUMENT",
        "FILE_NOT_FOUND",
        "NO_CREDENTIALS",
        "NO_REGION",
        "PROFILE_NOT_FOUND",
        "STACK_NOT_FOUND",
        "NO_API_URL",
    }
)


class VlpError(Exception):
    """An error answer of the API (its `code`, `message`, HTTP `status`, `request_id`, `retry_after` seconds and
    validation `details`), or a client-side failure (`status` None: NETWORK_ERROR, TIMEOUT, WAIT_TIMEOUT, or one
    of LOCAL_CODES)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: list[dict[str, Any]] | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details or []
        self.step = step

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        return f"{text} (request id {self.request_id})" if self.request_id else text

    def __repr__(self) -> str:
        return f"VlpError({self.code!r}, {self.message!r}, status={self.status!r}, request_id={self.request_id!r})"

    @property
    def is_client_error(self) -> bool:
        """A 4xx, or a problem found before sending: fix the request (retrying as is will not help)."""
        if self.status is not None:
            return 400 <= self.status < 500
        return self.code in LOCAL_CODES

    @property
    def exit_code(self) -> int:
        """The command line's exit status: 2 for a 4xx (or a local usage problem), 1 for a 5xx or a network
        failure."""
        return 2 if self.is_client_error else 1
