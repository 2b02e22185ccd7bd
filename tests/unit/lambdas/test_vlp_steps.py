"""The step registry (vlp.steps): one name per step, the routes, and THE routing decision."""

from __future__ import annotations

import ast
import importlib
import typing

import pytest
from vlp import errors, requests, steps
from vlp.steps import Route, route_for
from vlp_testkit import ROOT

# imported at collection: the handlers' tracer opens its socket here (the tests themselves get no network)
HANDLERS = {name: importlib.import_module(f"vlp.handlers.{name}") for name in steps.STEP_NAMES}


def test_one_name_per_step_everywhere():
    for step in steps.STEPS:
        handler = HANDLERS[step.name]
        logic = importlib.import_module(f"vlp.pipeline.{step.name}")
        assert callable(handler.handler) and callable(logic.run), step.name
        assert step.state == step.name.capitalize() and step.handler == f"vlp.handlers.{step.name}.handler"
    assert len(set(steps.STEP_NAMES)) == len(steps.STEPS)


def test_error_codes_keep_the_names_callers_know():
    # the steps were renamed (asr -> transcribe, intent+keywords -> understand, vlm -> answer); the codes were not
    assert errors.MODEL_STEPS == (
        "asr",
        "intent",
        "keywords",
        "plan",
        "vlm",
        "segment",
        "tag",
        "prompt",
        "interrogate",
        "restyle",
    )
    for step in steps.MODEL_STEPS:
        for name in step.error_steps:
            assert errors.CODES[f"{name.upper()}_UNAVAILABLE"][0] == 503


def test_routes_are_the_api_tasks_and_each_routed_step_exists():
    assert set(typing.get_args(requests.Task)) == {"auto", *(route.value for route in Route)}
    assert set(steps.ROUTES) == set(Route)
    assert steps.ROUTED == (Route.SEGMENT, Route.TAG, Route.PROMPT, Route.RESTYLE)
    for spec in steps.ROUTES.values():
        assert all(step in steps.BY_NAME and steps.BY_NAME[step].role for step in spec.steps)
    assert steps.NO_ANSWER_TASKS == ("tag", "prompt", "restyle")
    assert steps.JOBS_ONLY_TASKS == ("restyle",)
    assert steps.ROUTES[Route.RESTYLE].steps == ("interrogate", "restyle")


def _deployed(*missing: str):
    return lambda role: role not in missing


@pytest.mark.parametrize("task", ["describe", "segment", "tag", "prompt", "restyle"])
def test_a_given_task_routes_to_itself_whatever_the_intent(task):
    assert route_for(task, intent="tag", has_labels=False, deployed=_deployed("clip_tagging")) == (Route(task), [])


@pytest.mark.parametrize(
    ("intent", "has_labels", "missing", "route", "warned"),
    [
        ("segment", False, (), Route.SEGMENT, False),
        ("prompt", False, (), Route.PROMPT, False),
        ("tag", True, (), Route.TAG, False),
        ("tag", False, (), Route.DESCRIBE, True),  # tag needs labels
        ("segment", True, ("grounded_sam",), Route.DESCRIBE, True),  # the routed model is not deployed
        ("describe", False, ("vlm",), Route.DESCRIBE, False),
        ("chitchat", False, (), Route.DESCRIBE, False),  # an intent that is not a route
        ("restyle", False, (), Route.DESCRIBE, False),  # auto never routes to a jobs-only task
        (None, False, (), Route.DESCRIBE, False),  # no intent (no text, model not deployed)
    ],
)
def test_auto_routes_on_the_intent_with_fallbacks_to_describe(intent, has_labels, missing, route, warned):
    found, warnings = route_for("auto", intent=intent, has_labels=has_labels, deployed=_deployed(*missing))
    assert found is route and bool(warnings) is warned


def test_assemble_is_a_short_mapping():
    tree = ast.parse((ROOT / "lambdas" / "vlp" / "pipeline" / "assemble.py").read_text())
    run = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run")
    assert run.end_lineno is not None and run.end_lineno - run.lineno + 1 <= 40


def test_the_pipeline_does_not_import_the_http_layer():
    for path in (ROOT / "lambdas" / "vlp" / "pipeline").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("vlp.api"), path.name
            if isinstance(node, ast.Import):
                assert not any(alias.name.startswith("vlp.api") for alias in node.names), path.name


def test_a_jobs_only_route_is_refused_on_the_synchronous_api(monkeypatch):
    """A route marked jobs_only (the Express machine has no branch for it) is refused up front for analyze."""
    from dataclasses import replace

    from vlp.errors import CallerError
    from vlp.pipeline.validate import check_available
    from vlp.requests import AnalyzeRequest
    from vlp.settings import PipelineSettings, load_settings

    settings = load_settings(PipelineSettings)
    request = AnalyzeRequest.model_validate({"image_base64": "iVBORw0KGgo=", "task": "prompt"})
    check_available(request, settings, source="analyze")  # not jobs-only: fine
    monkeypatch.setitem(steps.ROUTES, Route.PROMPT, replace(steps.ROUTES[Route.PROMPT], jobs_only=True))
    check_available(request, settings, source="jobs")
    with pytest.raises(CallerError) as refused:
        check_available(request, settings, source="analyze")
    assert refused.value.code == "USE_JOBS" and "/v1/jobs" in str(refused.value)
