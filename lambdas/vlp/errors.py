"""Domain errors: one exception class per way a request can fail, each carrying a code and an HTTP status.

Two audiences read these errors:

- **Step Functions**: a pipeline Lambda that raises is seen as ``{"Error": <exception class name>, "Cause":
  <the Lambda error JSON>}``; the Lambda error JSON's ``errorMessage`` is ``str(exception)``, which for every
  class here is the compact JSON ``{"code", "message", "status", "step", "retryable"}``. The state machine's
  Retry/Catch match the *class names* below (docs/pipeline.md, "Errors"), so they are a contract: never rename.
- **API handlers**: ``error_from_execution`` turns a failed execution's ``error``/``cause`` back into
  ``(status, {"code", "message"})``; ``vlp.http.error_response`` is the one place that maps any exception to an
  HTTP error response.

Pure Python, no third-party imports: every handler imports this module.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from vlp.steps import ERROR_STEPS

# ---- the model steps: each names its failure codes <STEP>_FAILED / _TIMEOUT / _UNAVAILABLE ----
MODEL_STEPS = ERROR_STEPS  # vlp.steps: the <STEP> names callers know (asr, intent, keywords, plan, vlm, ...)

# code -> (HTTP status, meaning). Every code the Lambdas raise themselves is here; docs/api.md and
# docs/pipeline.md carry the same table (a test keeps them in sync). Model packages may add their own
# 4xx codes (docs/model-contracts.md); those pass through unchanged.
CODES: dict[str, tuple[int, str]] = {
    # -- caller errors: the request is wrong; never retried --
    "INVALID_JSON": (400, "The body is not a JSON object."),
    "INVALID_REQUEST": (400, "A field is missing, has the wrong type, an unknown name or a value out of range."),
    "UNKNOWN_TASK": (400, "`task` is not one of auto, describe, segment, tag, prompt, restyle."),
    "USE_JOBS": (400, "Task `restyle` runs only through POST /v1/jobs, not POST /v1/analyze."),
    "MISSING_STYLE": (400, "Task `restyle` needs `style` (a preset) or `style_prompt`."),
    "MISSING_IMAGE": (400, "Neither `image_key` nor `image_base64` was given."),
    "INVALID_S3_KEY": (
        400,
        "An S3 key is not one this API issued (uploads/<caller>/<uuid>/<name> or inputs/<caller>/<uuid>/<name>).",
    ),
    "INVALID_BASE64": (400, "`image_base64` is not valid base64."),
    "EMPTY_LABELS": (400, "`labels` is an empty list."),
    "TOO_MANY_LABELS": (400, "More labels than the API accepts."),
    "INVALID_LABEL": (400, "A label is empty, too long, or holds a control character or a bidirectional override."),
    "INVALID_TEXT": (
        400,
        "`text`, a history turn or a restyle text (`style_prompt`, `prompt`, `options.negative_prompt`) holds a "
        "control character or a bidirectional override.",
    ),
    "MISSING_LABELS": (400, "Task `tag` needs `labels`."),
    "MISSING_TEXT": (400, "Task `segment` needs something to look for: `text`, `audio_key` or `labels`."),
    "TOO_MANY_PROMPTS": (400, "Task `segment` takes at most 32 labels."),
    "HISTORY_TOO_LONG": (400, "`history` has more than 16 turns or 8,000 characters in all."),
    "INVALID_HISTORY": (400, "`history` is not turns of user, assistant, user, ..., assistant; or a turn is blank."),
    "INVALID_TEMPLATE": (400, "`options.label_template` does not contain `{}` exactly once."),
    "UPLOAD_NOT_FOUND": (
        400,
        "The referenced S3 object does not exist (not uploaded yet, expired, or another caller's).",
    ),
    "INVALID_IMAGE": (400, "The image cannot be decoded (corrupt, truncated, or not an image)."),
    "INVALID_AUDIO": (400, "The audio header is corrupt."),
    "INVALID_IDEMPOTENCY_KEY": (400, "The `Idempotency-Key` header is not 1..128 printable ASCII characters."),
    "NOT_FOUND": (404, "No such route."),
    "JOB_NOT_FOUND": (404, "No job with this id (or another caller's)."),
    "METHOD_NOT_ALLOWED": (405, "The route exists but not with this method."),
    "IDEMPOTENCY_KEY_REUSED": (409, "This `Idempotency-Key` came with another body in the last 24 hours."),
    "IDEMPOTENCY_KEY_IN_PROGRESS": (409, "A request with this `Idempotency-Key` is still being handled: retry."),
    "REQUEST_TOO_LARGE": (413, "The request (labels, text, inline image) exceeds the pipeline's input budget."),
    "INLINE_IMAGE_TOO_LARGE": (413, "`image_base64` is above the inline limit: upload the image with /v1/uploads."),
    "IMAGE_TOO_LARGE": (413, "The image file is above the byte limit."),
    "IMAGE_TOO_MANY_PIXELS": (413, "The image has more pixels than allowed (decompression-bomb guard)."),
    "AUDIO_TOO_LARGE": (413, "The audio file is above the byte limit."),
    "AUDIO_TOO_LONG": (413, "The audio is longer than allowed."),
    "UNSUPPORTED_MEDIA_TYPE": (415, "The content type is not accepted for this kind of upload."),
    "UNSUPPORTED_IMAGE_FORMAT": (415, "The image is not JPEG, PNG or WebP."),
    "UNSUPPORTED_AUDIO_FORMAT": (415, "The audio is not WAV, MP3, FLAC, Ogg or WebM."),
    "TASK_NOT_AVAILABLE": (422, "The task needs a model that this environment does not deploy."),
    "NO_SEGMENT_PROMPTS": (422, "Nothing to segment: no labels were given and no keywords were found in the text."),
    "MODEL_REJECTED_INPUT": (422, "A model refused the input (e.g. prompt longer than its context)."),
    "THROTTLED": (429, "Too many requests or running executions: retry with backoff."),
    # -- server-side failures --
    "INTERNAL_ERROR": (500, "An unexpected error; the log has the details under the request id."),
    "CONFIGURATION_ERROR": (500, "The function's environment is invalid (deployment problem)."),
    "PIPELINE_FAILED": (502, "The pipeline failed for a reason it did not classify."),
    "PIPELINE_UNAVAILABLE": (503, "The pipeline could not be started or a step could not be invoked."),
    "STORAGE_UNAVAILABLE": (503, "S3 failed after retries."),
    "IDEMPOTENCY_UNAVAILABLE": (503, "The idempotency store (DynamoDB) failed: retry with the same key."),
    "PIPELINE_TIMEOUT": (504, "The pipeline did not finish in time (use /v1/jobs for long requests)."),
    "JOB_ABORTED": (500, "The job was stopped by an operator."),
}
for _step in MODEL_STEPS:
    _name = _step.upper()
    CODES[f"{_name}_FAILED"] = (502, f"The {_step} model failed (bad response, or a server error after retries).")
    CODES[f"{_name}_UNAVAILABLE"] = (503, f"The {_step} model endpoint is throttled, starting or unavailable.")
    CODES[f"{_name}_TIMEOUT"] = (504, f"The {_step} model did not answer in time.")
del _step, _name


def status_of(code: str, default: int = 500) -> int:
    return CODES.get(code, (default, ""))[0]


class VlpError(Exception):
    """Base of every domain error. ``str(error)`` is the Cause JSON Step Functions carries."""

    code = "INTERNAL_ERROR"
    status = 500
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        step: str | None = None,
        details: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.status = int(status or (CODES[self.code][0] if self.code in CODES else type(self).status))
        self.step = step
        self.details = details
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.step:
            body["step"] = self.step
        if self.retryable:
            body["retryable"] = True
        if self.retry_after:
            body["retry_after"] = self.retry_after
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


class CallerError(VlpError):
    """The request is wrong (4xx). Never retried: the state machine catches it and fails the execution."""

    code = "INVALID_REQUEST"
    status = 400


class ModelRetryableError(VlpError):
    """A transient model-endpoint failure: throttling, 5xx, endpoint unavailable, connection error."""

    status = 503
    retryable = True


class ModelTimeoutError(ModelRetryableError):
    """The endpoint did not answer within the read timeout (or SageMaker's 60 s invocation limit)."""

    status = 504


class ModelNotReadyError(ModelRetryableError):
    """The endpoint has no instance ready (scaled to zero, or starting): retry after minutes, not seconds."""

    status = 503


class ModelFailedError(VlpError):
    """A model failure that retrying will not fix: an unparseable response, a missing endpoint, access denied."""

    status = 502


class DependencyError(VlpError):
    """S3 (or another AWS dependency) failed after the SDK's own retries; worth one more try."""

    code = "STORAGE_UNAVAILABLE"
    status = 503
    retryable = True


class ConfigurationError(VlpError):
    """The Lambda environment is invalid; raised at cold start so the deployment fails loudly."""

    code = "CONFIGURATION_ERROR"
    status = 500


# Exceptions of libraries the API functions call, by class name (no import: this module has no dependencies):
# class name -> (code, message, retry_after). ``library_error`` turns them into domain errors.
LIBRARY_ERRORS: dict[str, tuple[str, str, int | None]] = {
    # Powertools Idempotency (POST /v1/jobs with an Idempotency-Key)
    "IdempotencyValidationError": (
        "IDEMPOTENCY_KEY_REUSED",
        "This Idempotency-Key was used with a different request body in the last 24 hours: send a new key for a "
        "new request, or the same body to get the same job.",
        None,
    ),
    "IdempotencyAlreadyInProgressError": (
        "IDEMPOTENCY_KEY_IN_PROGRESS",
        "A request with this Idempotency-Key is still being handled: retry in a moment to get its job.",
        1,
    ),
    "IdempotencyPersistenceLayerError": (
        "IDEMPOTENCY_UNAVAILABLE",
        "The idempotency store could not be reached: retry with the same Idempotency-Key.",
        2,
    ),
    "IdempotencyInconsistentStateError": (
        "IDEMPOTENCY_UNAVAILABLE",
        "The idempotency store changed during the request: retry with the same Idempotency-Key.",
        1,
    ),
}


def library_error(exc: BaseException) -> VlpError | None:
    """The domain error of a library exception listed in ``LIBRARY_ERRORS`` (or of a subclass), else None."""
    for cls in type(exc).__mro__:
        if cls.__name__ in LIBRARY_ERRORS:
            code, message, retry_after = LIBRARY_ERRORS[cls.__name__]
            kind = CallerError if status_of(code) < 500 else DependencyError
            return kind(message, code=code, retry_after=retry_after)
    return None


# The Error names Step Functions sees, for Retry/Catch (docs/pipeline.md).
RETRYABLE_ERROR_NAMES = ("ModelRetryableError", "ModelTimeoutError", "ModelNotReadyError", "DependencyError")
TERMINAL_ERROR_NAMES = ("CallerError", "ModelFailedError", "ConfigurationError")
ERROR_NAMES = RETRYABLE_ERROR_NAMES + TERMINAL_ERROR_NAMES


_E = TypeVar("_E", bound=VlpError)
_MODEL_ERROR_SUFFIXES: dict[type[VlpError], str] = {
    ModelTimeoutError: "TIMEOUT",
    ModelNotReadyError: "UNAVAILABLE",
    ModelRetryableError: "UNAVAILABLE",
}


def model_error(kind: type[_E], step: str, message: str, **kwargs: Any) -> _E:
    """A model-step error with the step's code: FAILED (502), UNAVAILABLE (503) or TIMEOUT (504)."""
    suffix = _MODEL_ERROR_SUFFIXES.get(kind, "FAILED")
    kwargs.setdefault("code", f"{step.upper()}_{suffix}")
    return kind(message, step=step, **kwargs)


# ---- failed executions -> HTTP errors (used by the analyze and jobs handlers) ----

_STATES_ERRORS = {
    "States.Timeout": ("PIPELINE_TIMEOUT", "The request did not finish in time; send it to /v1/jobs instead."),
    "States.HeartbeatTimeout": ("PIPELINE_TIMEOUT", "A pipeline step stopped responding."),
    "Lambda.TooManyRequestsException": ("PIPELINE_UNAVAILABLE", "The service is at capacity; retry shortly."),
    "Lambda.ServiceException": ("PIPELINE_UNAVAILABLE", "A pipeline step could not be invoked; retry shortly."),
    "Lambda.AWSLambdaException": ("PIPELINE_UNAVAILABLE", "A pipeline step could not be invoked; retry shortly."),
    "Lambda.SdkClientException": ("PIPELINE_UNAVAILABLE", "A pipeline step could not be invoked; retry shortly."),
    "States.DataLimitExceeded": ("INTERNAL_ERROR", "The pipeline produced more data than a state may carry."),
}


def _json_object(text: Any) -> dict | None:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def error_from_execution(error: str | None, cause: str | None) -> dict[str, Any]:
    """``{"code", "message", "status", ...}`` for a failed execution's ``error`` and ``cause``.

    Accepts the cause as the state machine may pass it on: our Cause JSON itself (Fail state with
    ``CausePath`` on the Lambda's errorMessage), or the raw Lambda error JSON (``{"errorMessage": <our JSON>,
    "errorType", "stackTrace", ...}``). Anything else (unknown exception names, States.* errors) maps to a
    generic code: a stack trace or a raw Step Functions cause never reaches the caller.
    """
    error = error or ""
    outer = _json_object(cause)
    inner = outer
    if outer is not None and "errorMessage" in outer:
        inner = _json_object(outer.get("errorMessage"))
    if error in ERROR_NAMES and inner and isinstance(inner.get("code"), str) and isinstance(inner.get("message"), str):
        status = inner.get("status")
        code = inner["code"]
        if not isinstance(status, int) or not 400 <= status <= 599:
            status = status_of(code)
        result: dict[str, Any] = {"code": code, "message": inner["message"][:1000], "status": status}
        for key in ("step", "retry_after"):
            if inner.get(key) is not None:
                result[key] = inner[key]
        if isinstance(inner.get("details"), list):
            result["details"] = inner["details"][:20]
        return result
    if error in _STATES_ERRORS:
        code, message = _STATES_ERRORS[error]
        return {"code": code, "message": message, "status": status_of(code)}
    if error.startswith("States.") or error.startswith("Lambda."):
        return {"code": "PIPELINE_FAILED", "message": "The pipeline failed; retry later.", "status": 502}
    return {"code": "INTERNAL_ERROR", "message": "An internal error occurred.", "status": 500}
