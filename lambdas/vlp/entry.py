"""The one Lambda entry of every pipeline step: ``vlp/handlers/<step>.py`` is ``handler = step_entry("<step>")``.

The registry (vlp.steps) says what a step needs, so no handler module repeats it:

- at import (Lambda's init phase): the validated environment (``PipelineSettings``: a bad variable fails the
  init) and the AWS clients of the step: S3 when it reads, writes or lists the requests bucket, SageMaker runtime
  (read timeout ``SAGEMAKER_READ_TIMEOUT_SECONDS``) when it has a model role;
- at the first invocation: its logic, ``vlp.pipeline.<step>.run``, and what that imports (the pydantic models of
  the context and results, the inference helpers, Pillow for the steps that decode images). A step's cold start
  pays for its own logic only, once, and none of it before the first event (bench/cold_start.py);
- at every invocation: ``run(event, s3=..., sagemaker=..., settings=...)`` with the clients it has (a step with
  none, like assemble, gets the event alone); a pydantic result is dumped to JSON. The handler is wrapped by
  vlp.runtime.step_handler (logs, metrics, traces, errors) like every step.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from vlp import aws
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings
from vlp.steps import BY_NAME, Step


def step_clients(step: Step, settings: PipelineSettings) -> dict[str, Any]:
    """``step``'s AWS clients by keyword: ``s3`` when it reads, writes or lists the bucket, ``sagemaker`` when it
    has a model role."""
    clients: dict[str, Any] = {}
    if step.reads or step.writes or step.lists:
        clients["s3"] = aws.s3_client()
    if step.role is not None:
        clients["sagemaker"] = aws.sagemaker_runtime_client(settings.sagemaker_read_timeout_seconds)
    return clients


class StepEntry:
    """The Lambda handler of pipeline step ``name`` (a vlp.steps name; KeyError for any other). ``settings`` and
    ``clients`` are what each invocation passes to the logic (tests replace them)."""

    def __init__(self, name: str) -> None:
        self.step = BY_NAME[name]
        self.settings = load_settings(PipelineSettings)
        self.clients = step_clients(self.step, self.settings)
        self._logic: Callable[..., Any] | None = None  # vlp.pipeline.<name>.run, imported at the first invocation
        # a jobs execution's stored documents go through the step's own S3 client when it has one (vlp.runtime)
        self._handler = step_handler(name, s3=lambda: self.clients.get("s3"))(self._invoke)

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        return self._handler(event, context)

    def _invoke(self, event: Any, context: Any) -> dict[str, Any]:
        if self._logic is None:
            self._logic = importlib.import_module(self.step.logic).run
        # a step with no clients (assemble) gets the event alone
        kwargs = {**self.clients, "settings": self.settings} if self.clients else {}
        result = self._logic(event, **kwargs)
        return result.model_dump(mode="json") if hasattr(result, "model_dump") else result


def step_entry(name: str) -> StepEntry:
    return StepEntry(name)
