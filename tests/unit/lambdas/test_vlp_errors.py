"""Domain errors: the Cause JSON Step Functions carries, and failed executions mapped back to HTTP errors."""

from __future__ import annotations

import json

import pytest
from vlp import errors
from vlp.errors import (
    CODES,
    CallerError,
    DependencyError,
    ModelFailedError,
    ModelNotReadyError,
    ModelRetryableError,
    ModelTimeoutError,
    error_from_execution,
    model_error,
)


def lambda_cause(exc: Exception) -> str:
    """The Cause string Step Functions records for an exception raised by a Python Lambda."""
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": "r",
            "stackTrace": ['  File "/var/task/vlp/x.py", line 1, in handler\n'],
        }
    )


def test_str_is_the_cause_json():
    exc = CallerError("labels must not be empty", code="EMPTY_LABELS", step="tag")
    assert json.loads(str(exc)) == {
        "code": "EMPTY_LABELS",
        "message": "labels must not be empty",
        "status": 400,
        "step": "tag",
    }


def test_status_comes_from_the_code_table():
    assert CallerError("x", code="IMAGE_TOO_LARGE").status == 413
    assert CallerError("x", code="TASK_NOT_AVAILABLE").status == 422
    assert CallerError("x", code="SOME_MODEL_CODE", status=413).status == 413  # model codes keep their status
    assert CallerError("x", code="SOME_MODEL_CODE").status == 400


@pytest.mark.parametrize(
    ("kind", "code", "status", "retryable"),
    [
        (ModelRetryableError, "VLM_UNAVAILABLE", 503, True),
        (ModelNotReadyError, "VLM_UNAVAILABLE", 503, True),
        (ModelTimeoutError, "VLM_TIMEOUT", 504, True),
        (ModelFailedError, "VLM_FAILED", 502, False),
    ],
)
def test_model_errors_name_the_step(kind, code, status, retryable):
    exc = model_error(kind, "vlm", "boom")
    assert (exc.code, exc.status, exc.retryable, exc.step) == (code, status, retryable, "vlm")
    assert type(exc).__name__ in errors.ERROR_NAMES


def test_error_names_are_the_documented_contract():
    # The state machine's Retry/Catch match these exact class names: renaming one breaks deployed machines.
    assert errors.RETRYABLE_ERROR_NAMES == (
        "ModelRetryableError",
        "ModelTimeoutError",
        "ModelNotReadyError",
        "DependencyError",
    )
    assert errors.TERMINAL_ERROR_NAMES == ("CallerError", "ModelFailedError", "ConfigurationError")
    for name in errors.ERROR_NAMES:
        assert issubclass(getattr(errors, name), errors.VlpError)


def test_every_step_has_its_three_codes():
    for step in errors.MODEL_STEPS:
        assert CODES[f"{step.upper()}_FAILED"][0] == 502
        assert CODES[f"{step.upper()}_UNAVAILABLE"][0] == 503
        assert CODES[f"{step.upper()}_TIMEOUT"][0] == 504


@pytest.mark.parametrize(
    "exc",
    [
        CallerError("Task 'tag' needs labels to score.", code="MISSING_LABELS"),
        model_error(ModelTimeoutError, "segment", "too slow"),
        model_error(ModelNotReadyError, "vlm", "starting", retry_after=120),
        DependencyError("S3 is unavailable (SlowDown)."),
    ],
)
def test_failed_execution_maps_back_to_the_raised_error(exc):
    expected = {"code": exc.code, "message": exc.message, "status": exc.status}
    if exc.step:
        expected["step"] = exc.step
    if exc.retry_after:
        expected["retry_after"] = exc.retry_after
    # raw Lambda error JSON (Fail state with CausePath $.error.Cause) ...
    assert error_from_execution(type(exc).__name__, lambda_cause(exc)) == expected
    # ... or our JSON alone (CausePath on the errorMessage)
    assert error_from_execution(type(exc).__name__, str(exc)) == expected


@pytest.mark.parametrize(
    ("error", "cause", "code", "status"),
    [
        ("States.Timeout", "State timed out", "PIPELINE_TIMEOUT", 504),
        ("Lambda.TooManyRequestsException", "Rate exceeded", "PIPELINE_UNAVAILABLE", 503),
        ("States.DataLimitExceeded", "too big", "INTERNAL_ERROR", 500),
        ("States.Runtime", "An error occurred while executing the state", "PIPELINE_FAILED", 502),
        ("KeyError", lambda_cause(KeyError("image")), "INTERNAL_ERROR", 500),  # a bug: no internals leak
        ("CallerError", "not json {", "INTERNAL_ERROR", 500),
        ("CallerError", json.dumps({"errorMessage": "plain text"}), "INTERNAL_ERROR", 500),
        (None, None, "INTERNAL_ERROR", 500),
    ],
)
def test_unclassified_failures_get_generic_codes(error, cause, code, status):
    mapped = error_from_execution(error, cause)
    assert (mapped["code"], mapped["status"]) == (code, status)
    assert "stackTrace" not in json.dumps(mapped) and "File " not in mapped["message"]


def test_cause_status_outside_http_errors_is_not_trusted():
    cause = json.dumps({"code": "EMPTY_LABELS", "message": "x", "status": 200})
    assert error_from_execution("CallerError", cause)["status"] == 400
