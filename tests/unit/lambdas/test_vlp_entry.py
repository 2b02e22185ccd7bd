"""The generic step entry (vlp.entry): clients by the registry, the logic imported at the first invocation; and
the lazy tracer (vlp.tracing)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from pydantic import BaseModel
from vlp import entry, steps, tracing
from vlp.settings import PipelineSettings, load_settings
from vlp_testkit import LambdaContext


@pytest.mark.parametrize("step", steps.STEPS, ids=lambda step: step.name)
def test_clients_follow_the_registry(step):
    clients = entry.step_clients(step, load_settings(PipelineSettings))
    assert ("s3" in clients) == bool(step.reads or step.writes or step.lists)
    assert ("sagemaker" in clients) == (step.role is not None)
    if "sagemaker" in clients:
        assert clients["sagemaker"].meta.service_model.service_name == "sagemaker-runtime"


class _Result(BaseModel):
    value: int


@pytest.mark.parametrize(("name", "dumped"), [("plan", True), ("assemble", False)])
def test_the_logic_is_imported_at_the_first_invocation_and_gets_the_step_clients(monkeypatch, name, dumped):
    step = steps.BY_NAME[name]
    calls: list[dict[str, Any]] = []

    def run(event: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return _Result(value=event["n"]) if dumped else {"value": event["n"]}

    handler = entry.step_entry(name)
    # what importlib returns at the first invocation
    monkeypatch.setitem(sys.modules, step.logic, types.SimpleNamespace(run=run))
    assert handler({"n": 1, "request_id": "r"}, LambdaContext()) == {"value": 1}
    assert handler({"n": 2, "request_id": "r"}, LambdaContext()) == {"value": 2}
    expected = {**handler.clients, "settings": handler.settings} if handler.clients else {}
    assert calls == [expected, expected]
    assert (name == "assemble") == (calls[0] == {})  # assemble has no clients: the event alone


@pytest.mark.parametrize("name", ["segment", "plan"])
def test_a_jobs_step_stores_through_its_own_s3_client(monkeypatch, name):
    """A jobs execution's stored documents go through the step's own S3 client; a step without one (plan) builds
    one shared client at its first jobs invocation (vlp.runtime), not one per invocation."""
    from vlp import runtime
    from vlp.pipeline import stored

    used: list[Any] = []

    def load(s3: Any, bucket: str, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        used.append(s3)
        return event, []

    def keep(s3: Any, bucket: str, step: str, event: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        used.append(s3)
        return result

    monkeypatch.setattr(stored, "load", load)
    monkeypatch.setattr(stored, "keep", keep)
    monkeypatch.setattr(runtime, "_STORE", None)
    handler = entry.step_entry(name)
    monkeypatch.setitem(sys.modules, steps.BY_NAME[name].logic, types.SimpleNamespace(run=lambda event, **_: {}))
    for _ in range(2):
        handler({"request_id": "r", "source": "jobs"}, LambdaContext())
    own = handler.clients.get("s3")
    expected = own if own is not None else runtime._STORE
    assert expected is not None and used == [expected] * 4
    assert (runtime._STORE is None) == (own is not None)


def test_an_unknown_step_has_no_entry():
    with pytest.raises(KeyError):
        entry.step_entry("resize")


@pytest.mark.parametrize(
    ("env", "active"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "0"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),
    ],
)
def test_tracing_is_active_where_powertools_would_trace(env, active):
    assert tracing.tracing_active(env) is active


def test_a_disabled_tracer_builds_nothing_and_leaves_the_handler_alone(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    lazy = tracing.LazyTracer()
    lazy.patch(modules=("botocore",))
    lazy.put_annotation(key="step", value="plan")

    def fn(event: Any, context: Any) -> Any:
        return event

    wrapped = lazy.capture_lambda_handler(capture_response=False)(fn)
    assert wrapped({"a": 1}, None) == {"a": 1}
    assert lazy.get() is None
