"""The error a model container answers a request with: a machine-readable code, a message for a person, and the
HTTP status (by default the one the container's table gives the code).

Shared by the DJL packages (vlp_djl_support.RequestError; the package build copies model_packages/shared/ into
every model.tar.gz) and the Whisper server (whisper_server.errors.ApiError; its image copies this file beside
whisper_server). Plain standard library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ContainerError(Exception):
    """A request the container refuses (4xx) or could not serve (5xx): `{"error": {"code", "message"}}`."""

    statuses: ClassVar[Mapping[str, int]] = {}  # each container's own code -> status table

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or self.statuses.get(code, 400)

    def body(self, batched: bool = False) -> dict:
        """The response body; in a dynamic batch (one HTTP status for all) it carries its own status too."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if batched:
            error["status"] = self.status
        return {"error": error}
