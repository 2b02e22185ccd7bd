"""InvokeEndpoint with error classification: every failure becomes one of the domain errors of vlp.errors.

| what happened                                                | raised              | code                         |
| ------------------------------------------------------------ | ------------------- | ---------------------------- |
| ThrottlingException, ServiceUnavailable, InternalFailure,    | ModelRetryableError | <STEP>_UNAVAILABLE (503)     |
| InternalDependencyException, connection error                |                     |                              |
| ModelError with OriginalStatusCode 5xx or 429                | ModelRetryableError | <STEP>_FAILED (502) /        |
|                                                              |                     | <STEP>_UNAVAILABLE (503)     |
| ModelNotReadyException, inference component without capacity | ModelNotReadyError  | <STEP>_UNAVAILABLE (503)     |
| read timeout, or SageMaker's "invocation timed out"          | ModelTimeoutError   | <STEP>_TIMEOUT (504)         |
| ModelError with OriginalStatusCode 4xx (not 429), or a body  | CallerError         | the model's code (e.g.       |
| with an ``error`` key whose status is 4xx                    |                     | TOO_MANY_LABELS), its status |
| anything else (endpoint not found, access denied, bad JSON)  | ModelFailedError    | <STEP>_FAILED (502)          |
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from vlp.errors import (
    CallerError,
    ModelFailedError,
    ModelNotReadyError,
    ModelRetryableError,
    ModelTimeoutError,
    VlpError,
    model_error,
)

_UNAVAILABLE = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "InternalDependencyException",
}
NOT_READY_RETRY_AFTER = 120  # seconds: an instance starting from zero takes minutes


@dataclass(frozen=True)
class Endpoint:
    """Where a model role is served: the endpoint, and its inference component when it has one."""

    role: str
    name: str
    inference_component: str | None = None


@dataclass(frozen=True)
class Invocation:
    body: bytes
    content_type: str
    elapsed_ms: float


def invoke(
    client: Any,
    endpoint: Endpoint,
    *,
    step: str,
    body: bytes,
    content_type: str = "application/json",
    accept: str = "application/json",
    custom_attributes: str | None = None,
) -> Invocation:
    """One InvokeEndpoint call (no SDK retries: the state machine retries the retryable errors)."""
    from botocore.exceptions import BotoCoreError, ClientError

    params: dict[str, Any] = {
        "EndpointName": endpoint.name,
        "Body": body,
        "ContentType": content_type,
        "Accept": accept,
    }
    if custom_attributes:
        params["CustomAttributes"] = custom_attributes
    if endpoint.inference_component:
        params["InferenceComponentName"] = endpoint.inference_component
    started = time.perf_counter()
    try:
        response = client.invoke_endpoint(**params)
        data = response["Body"].read()
    except ClientError as error:
        raise classify_client_error(error, step=step, endpoint=endpoint) from None
    except BotoCoreError as error:
        raise classify_transport_error(error, step=step, endpoint=endpoint) from None
    elapsed = (time.perf_counter() - started) * 1000
    return Invocation(body=data, content_type=response.get("ContentType", ""), elapsed_ms=elapsed)


def classify_transport_error(error: Exception, *, step: str, endpoint: Endpoint) -> VlpError:
    from botocore.exceptions import ReadTimeoutError

    if isinstance(error, ReadTimeoutError):
        return model_error(ModelTimeoutError, step, f"The {endpoint.role} endpoint did not answer in time.")
    return model_error(
        ModelRetryableError, step, f"The {endpoint.role} endpoint could not be reached ({type(error).__name__})."
    )


def classify_client_error(error: Any, *, step: str, endpoint: Endpoint) -> VlpError:
    response = getattr(error, "response", {}) or {}
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "") or ""
    role = endpoint.role
    if code == "ModelError":
        original = response.get("OriginalStatusCode")
        original_message = response.get("OriginalMessage")
        try:
            original = int(original) if original is not None else None
        except (TypeError, ValueError):
            original = None
        if "timed out" in message.lower() or "timed out" in str(original_message or "").lower():
            return model_error(ModelTimeoutError, step, f"The {role} model did not answer within SageMaker's limit.")
        if original is not None and 400 <= original < 500 and original != 429:
            return error_from_body(original_message, status=original, step=step, role=role)
        if original == 429:
            return model_error(ModelRetryableError, step, f"The {role} model is overloaded.")
        return model_error(
            ModelRetryableError,
            step,
            f"The {role} model failed (status {original if original is not None else 'unknown'}).",
            code=f"{step.upper()}_FAILED",
            status=502,
        )
    if code == "ModelNotReadyException" or (code == "ValidationError" and "capacity" in message.lower()):
        return model_error(
            ModelNotReadyError,
            step,
            f"The {role} endpoint has no instance ready (it may be scaling up from zero); retry in a few minutes.",
            retry_after=NOT_READY_RETRY_AFTER,
        )
    if code in _UNAVAILABLE:
        return model_error(ModelRetryableError, step, f"The {role} endpoint is busy or unavailable; retry shortly.")
    # ValidationError (endpoint not found / payload rejected), AccessDenied, ...: retrying will not help.
    return model_error(ModelFailedError, step, f"The {role} endpoint rejected the call ({code or 'unknown error'}).")


def error_from_body(body: Any, *, status: int | None, step: str, role: str) -> VlpError:
    """The error a model reported in its body (``{"error": {"code", "message", "status"?}}`` for our packages,
    ``{"error": "...", "error_type": "..."}`` for TGI). 4xx -> CallerError with the model's code; 5xx -> retryable."""
    parsed = body
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = None
    message = None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        inner_status = error.get("status")
        if isinstance(inner_status, int) and 400 <= inner_status <= 599:
            status = inner_status
    elif isinstance(error, str):
        message = error
        error_type = parsed.get("error_type") if isinstance(parsed, dict) else None
        if error_type == "validation":
            code = "MODEL_REJECTED_INPUT"
            status = 422
        elif error_type == "overloaded":
            status = 429
    status = status or 400
    if status == 429:
        return model_error(ModelRetryableError, step, f"The {role} model is overloaded.")
    if status >= 500:
        return model_error(
            ModelRetryableError,
            step,
            f"The {role} model failed: {(message or 'no message')[:300]}",
            code=f"{step.upper()}_FAILED",
            status=502,
        )
    if not code or not code.replace("_", "").isalnum() or not code.isupper():
        code = "MODEL_REJECTED_INPUT"
    return CallerError(
        (message or f"The {role} model rejected the input.")[:1000], code=code[:64], status=status, step=step
    )


def parse_json(invocation: Invocation, *, step: str, role: str) -> Any:
    """The JSON body of a successful invocation; an ``error`` key in it is an error whatever the HTTP status
    (DJL dynamic batching answers 200 for the batch and puts each request's error in its body)."""
    try:
        value = json.loads(invocation.body)
    except ValueError:
        raise model_error(ModelFailedError, step, f"The {role} model returned a body that is not JSON.") from None
    if isinstance(value, dict) and "error" in value:
        raise error_from_body(value, status=None, step=step, role=role)
    return value
