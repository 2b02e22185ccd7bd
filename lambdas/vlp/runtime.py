"""Powertools wiring shared by every handler: Logger (correlation id), Tracer, Metrics, and the two handler
decorators that keep the handler modules thin.

- ``api_handler``: API Gateway proxy functions. Correlation id = API Gateway's request id. Every exception
  becomes an error response through ``vlp.http.error_response`` (the one mapping place).
- ``step_handler(step)``: pipeline steps invoked by the state machine. Correlation id = the execution's
  ``request_id``. Domain errors are re-raised unchanged so Step Functions sees their class name as ``Error``.
  For a jobs (Standard) execution it also keeps user data out of the state (vlp.pipeline.stored): the stored
  documents are merged into the step's input before it runs, its result is split (user data to S3) after, and the
  user strings are taken out of an error's message.

Metrics (namespace POWERTOOLS_METRICS_NAMESPACE, default "VLP"; dimensions ``service`` and ``Step`` or
``Route``): ``Latency`` (ms, every invocation), ``ModelLatency`` (ms, the SageMaker call of a model step),
``CallerErrors`` (count, 4xx), ``Errors`` (count, everything else), ``Retryable`` (count, errors the state
machine will retry).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from vlp.errors import CallerError, VlpError
from vlp.tracing import LazyTracer

if TYPE_CHECKING:
    from vlp.http import ApiEvent

logger = Logger(utc=True)
# Built at the first invocation, only where tracing is active (vlp.tracing). vlp.aws patches botocore (the only
# library we call out with) when a function builds its first client.
tracer = LazyTracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "VLP")


_PATCHED = False
_STORE: Any = None  # the S3 client of the jobs state documents, built at the first jobs invocation


def trace_botocore() -> None:
    """X-Ray subsegments for every AWS call (idempotent; a no-op when tracing is disabled)."""
    global _PATCHED
    if not _PATCHED:
        tracer.patch(modules=("botocore",))
        _PATCHED = True


def record_model_latency(milliseconds: float) -> None:
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=round(milliseconds, 1))


def _report(exc: BaseException, *, rejected: str, failed: str, unexpected: str) -> None:
    """An invocation's exception in the metrics and the log: a caller error (info, ``rejected``), a domain error
    (error, ``failed``), anything else (the traceback, ``unexpected``)."""
    if isinstance(exc, CallerError):
        metrics.add_metric(name="CallerErrors", unit=MetricUnit.Count, value=1)
        logger.info(rejected, extra={"error": exc.to_dict()})
    else:
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        if isinstance(exc, VlpError):
            logger.error(failed, extra={"error": exc.to_dict()})
        else:
            logger.exception(unexpected)
    if isinstance(exc, VlpError) and exc.retryable:
        metrics.add_metric(name="Retryable", unit=MetricUnit.Count, value=1)


def api_handler(
    route: str, *, cors_origins: tuple[str, ...] = ()
) -> Callable[[Callable[[ApiEvent, Any], dict]], Callable[[dict, Any], dict]]:
    """Decorate ``fn(api_event, context) -> proxy response``; ``route`` names the metrics dimension;
    ``cors_origins`` are the browser origins that get CORS headers."""

    def decorate(fn: Callable[[ApiEvent, Any], dict]) -> Callable[[dict, Any], dict]:
        @logger.inject_lambda_context(clear_state=True)
        @tracer.capture_lambda_handler(capture_response=False)
        @metrics.log_metrics(raise_on_empty_metrics=False)
        @functools.wraps(fn)
        def handler(event: dict, context: Any) -> dict:
            # the API event models (pydantic) load at the first request, not in the init phase
            from vlp.http import cors_headers, error_response, parse_event

            started = time.perf_counter()
            metrics.add_dimension(name="Route", value=route)
            request_id = None
            api_event = None
            try:
                api_event = parse_event(event)
                request_id = api_event.request_id
                logger.set_correlation_id(request_id)
                tracer.put_annotation(key="api_request_id", value=request_id)
                response = fn(api_event, context)
            except Exception as exc:
                _report(exc, rejected="request rejected", failed="request failed", unexpected="unexpected error")
                response = error_response(exc, request_id=request_id)
            response["headers"].update(cors_headers(api_event, cors_origins))
            metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=_ms(started))
            logger.info("response", extra={"status": response.get("statusCode")})
            return response

        return handler

    return decorate


def _store(own: Callable[[], Any] | None) -> tuple[Any, str]:
    """The S3 client and bucket of the jobs state documents (vlp.pipeline.stored): the step's own client when it has
    one (``own``), else one built at the first jobs invocation and shared."""
    global _STORE
    client = own() if own is not None else None
    if client is None:
        if _STORE is None:
            from vlp import aws

            _STORE = aws.s3_client()
        client = _STORE
    return client, os.environ["REQUESTS_BUCKET"]


def step_handler(
    step: str, *, s3: Callable[[], Any] | None = None
) -> Callable[[Callable[[dict, Any], dict]], Callable[[dict, Any], dict]]:
    """Decorate a pipeline step ``fn(event, context) -> dict`` (small JSON, S3 references only). A jobs
    execution's step reads its input's stored documents and stores its result's user data (vlp.pipeline.stored),
    through the step's own S3 client (``s3()``, None for a step without one) rather than a second one."""

    def decorate(fn: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
        @logger.inject_lambda_context(clear_state=True)
        @tracer.capture_lambda_handler(capture_response=False)
        @metrics.log_metrics(raise_on_empty_metrics=False)
        @functools.wraps(fn)
        def handler(event: Any, context: Any) -> dict:  # event: whatever JSON the invoker sent
            started = time.perf_counter()
            request_id = event.get("request_id") if isinstance(event, dict) else None
            logger.set_correlation_id(request_id)
            logger.append_keys(step=step)
            metrics.add_dimension(name="Step", value=step)
            tracer.put_annotation(key="step", value=step)
            if isinstance(request_id, str):
                tracer.put_annotation(key="request_id", value=request_id)
            jobs = isinstance(event, dict) and event.get("source") == "jobs"  # vlp.pipeline.stored.JOBS
            documents: list[dict[str, Any]] = []  # a jobs step's stored documents: their strings are user data
            try:
                state = event
                if jobs:
                    from vlp.pipeline import stored

                    event, documents = stored.load(*_store(s3), state)
                result = fn(event, context)
                if isinstance(result.get("model_ms"), (int, float)):
                    record_model_latency(result["model_ms"])
                if jobs:
                    result = stored.keep(*_store(s3), step, state, result)
                return result
            except Exception as exc:
                if documents:  # the Fail state's Cause is kept in the history (collected only when a step fails)
                    stored.redact_error(exc, stored.redactions(documents))
                _report(
                    exc,
                    rejected="step rejected the request",
                    failed="step failed",
                    unexpected="step failed unexpectedly",
                )
                raise
            finally:
                metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=_ms(started))

        return handler

    return decorate


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
