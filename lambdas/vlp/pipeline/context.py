"""The JSON documents that travel between states (docs/pipeline.md, "State machine"), as pydantic models.

- ``ExecutionInput``: what the analyze/jobs handlers start an execution with (the validate step's input).
- ``Context``: what the validate step returns; every later step receives it, grown by the states' ResultPaths
  (``asr``, ``plan``, ``understand``, ``result``). S3 keys only, never image or audio bytes.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlp.api.models import AnalyzeOptions, AnalyzeRequest, Task, Turn, caller_error
from vlp.errors import CallerError
from vlp.inference.sagemaker import Endpoint
from vlp.keys import CALLER_PATTERN, UUID_PATTERN
from vlp.settings import PipelineSettings

_REQUEST_ID = Field(pattern=rf"^{UUID_PATTERN}$")
_CALLER = Field(pattern=rf"^{CALLER_PATTERN}$")  # the caller's key prefix, set by the API function (vlp.keys)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ExecutionInput(_Model):
    request_id: str = _REQUEST_ID
    caller: str = _CALLER
    api_request_id: str | None = None
    received_at_ms: int = Field(ge=0)
    source: Literal["analyze", "jobs"]
    request: AnalyzeRequest


class ImageRef(_Model):
    key: str  # normalised image: inputs/<caller>/<request id>/image.jpg (RGB, long side <= 2048)
    vlm_key: str  # inputs/<caller>/<request id>/vlm.jpg (long side <= 1024)
    source_key: str  # the checked copy of what the caller sent: inputs/<caller>/<request id>/source.<ext>
    format: str
    bytes: int
    width: int  # normalised
    height: int
    original_width: int  # upright original (after EXIF orientation)
    original_height: int


class AudioRef(_Model):
    key: str  # the validated copy, inputs/<caller>/<request id>/audio.<ext>: later steps read only this
    source_key: str | None = None  # what the caller sent (uploads/<caller>/...)
    format: Literal["wav", "mp3", "flac", "ogg", "webm"]
    content_type: str
    bytes: int
    duration: float | None = None


class Context(BaseModel):
    """The state after the validate step. Extra keys are the results earlier states stored (ResultPath)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    request_id: str = _REQUEST_ID
    caller: str = _CALLER
    api_request_id: str | None = None
    received_at_ms: int
    source: Literal["analyze", "jobs"]
    task: Task
    text: str | None = None
    labels: list[str] | None = None
    history: list[Turn] | None = None  # earlier turns of the conversation: the VLM reads them, nothing else
    options: AnalyzeOptions
    image: ImageRef
    audio: AudioRef | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    # added by later states
    asr: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    understand: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def full_text(self) -> str | None:
        """The caller's text and the transcript of the audio, joined: the newest turn (never the history)."""
        parts = [self.text]
        if isinstance(self.asr, dict) and isinstance(self.asr.get("text"), str):
            parts.append(self.asr["text"])
        joined = "\n".join(part.strip() for part in parts if part and part.strip())
        return joined or None

    def understood(self, branch: str) -> dict[str, Any]:
        """One branch of the Understand parallel state (intent, keywords, answer), or {}."""
        value = (self.understand or {}).get(branch)
        return value if isinstance(value, dict) else {}


def parse_context(event: Any) -> Context:
    try:
        return Context.model_validate(event)
    except ValidationError as error:
        # The state machine passes what the validate step produced: a mismatch is a wiring bug.
        raise ValueError(f"step input is not a pipeline context: {error.errors(include_url=False)[:3]}") from None


def parse_execution_input(event: Any) -> ExecutionInput:
    try:
        return ExecutionInput.model_validate(event)
    except ValidationError as error:
        # Executions can be started by anyone allowed to (e.g. from the console): validate like the API does.
        raise caller_error(error, what="execution input") from None


def endpoint(settings: PipelineSettings, role: str) -> Endpoint | None:
    name = settings.endpoint(role)
    return Endpoint(role=role, name=name, inference_component=settings.inference_component(role)) if name else None


def require_endpoint(settings: PipelineSettings, role: str, *, what: str) -> Endpoint:
    found = endpoint(settings, role)
    if found is None:
        raise CallerError(
            f"{what} needs the {role} model, which this environment does not deploy.", code="TASK_NOT_AVAILABLE"
        )
    return found


def output(started: float, **fields: Any) -> dict[str, Any]:
    """A step's result: its fields plus ``elapsed_ms``."""
    fields["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return fields


def skipped(started: float, reason: str, **fields: Any) -> dict[str, Any]:
    return output(started, skipped=True, reason=reason, **fields)


def is_random_model(body_model: Any, *, flag: Any = None) -> bool:
    """Whether a model reports random weights: an explicit ``random_weights: true`` in its response, or a model
    id that says so (the tiny local test models are named ``...random...``)."""
    if flag is True:
        return True
    return isinstance(body_model, str) and "random" in body_model.lower()
