"""What every step does the same way: read its input (the context, typed: vlp.pipeline.models), find the endpoint
of its role, time itself, and tell a random-weight test model."""

from __future__ import annotations

import base64
import time
from typing import Any

from pydantic import ValidationError

from vlp.errors import CallerError
from vlp.inference.sagemaker import Endpoint
from vlp.pipeline import storage
from vlp.pipeline.models import Context, ExecutionInput
from vlp.requests import caller_error
from vlp.settings import PipelineSettings


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


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (time.perf_counter()), for a result's ``elapsed_ms``."""
    return round((time.perf_counter() - started) * 1000, 1)


def is_random_model(body_model: Any, *, flag: Any = None) -> bool:
    """Whether a model reports random weights: an explicit ``random_weights: true`` in its response, or a model
    id that says so (the tiny local test models are named ``...random...``)."""
    if flag is True:
        return True
    return isinstance(body_model, str) and "random" in body_model.lower()


def image_b64(s3: Any, context: Context, settings: PipelineSettings) -> str:
    """The normalised image (long side <= 2048), base64: what the DJL models (segment, tag, prompt) are sent."""
    data = storage.read(s3, settings.requests_bucket, context.image.key)
    return base64.b64encode(data).decode("ascii")
