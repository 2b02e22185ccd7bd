"""The synthesized state machines against docs/pipeline.md: the Express definition IS the documented one (the
block tests/unit/lambdas runs over the real handlers), the Standard one differs only as documented, both pass
asl-validator, log and trace."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest
from cfn_values import render
from conftest import ROOT
from vlp import steps

from stacks import constants as c

DOC = ROOT / "docs" / "pipeline.md"
NODE_BIN = ROOT / "node_modules" / ".bin"
MODEL_TASKS = ("Transcribe", "Understand", "Plan", "Answer", "Segment", "Tag", "Prompt", "Interrogate", "Restyle")
# the steps of the jobs-only routes (restyle): on the Standard machine only (docs/pipeline.md, the asl-jobs block)
JOBS_ONLY_STEPS = {step for route in steps.JOBS_ONLY_TASKS for step in steps.ROUTES[steps.Route(route)].steps}


def _doc_json(after: str) -> dict:
    """The first ```json block of docs/pipeline.md after the text `after`."""
    text = DOC.read_text().split(after, 1)[1]
    return json.loads(text.split("```json", 1)[1].split("```", 1)[0])


NOT_READY_RETRIER = _doc_json("The Standard machine's extra retrier")


def documented_definition() -> dict:
    return _doc_json("<!-- asl:begin -->")


def standard_definition() -> dict:
    """The documented Express definition plus the asl-jobs block (the jobs-only route): a Route choice appended, a
    NeedsAnswer choice after the `$.task` ones, branch (a)'s states."""
    additions = _doc_json("<!-- asl-jobs:begin -->")
    standard = documented_definition()
    routed, answer = (branch["States"] for branch in standard["States"][steps.ANALYZE_STATE]["Branches"])
    routed[steps.ROUTE_STATE]["Choices"].extend(additions["Route"])
    choices = answer["NeedsAnswer"]["Choices"]
    at = sum(1 for choice in choices if choice.get("Variable") == "$.task")
    choices[at:at] = additions["NeedsAnswer"]
    routed.update(additions["States"])
    return standard


def machines(assembly, env: str) -> dict[str, dict]:
    """EXPRESS / STANDARD -> {"properties", "definition"} with `${<Name>FunctionArn}` for the function ARNs."""
    resources = assembly.templates[f"{env}/{c.API_STACK_ID}"]["Resources"]
    names = {
        logical_id: resource["Properties"]["Handler"].split(".")[2]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }

    def function_arn(value: dict) -> str:
        assert "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn", f"unexpected token in a definition: {value}"
        return "${" + c.function_construct_id(names[value["Fn::GetAtt"][0]]) + "Arn}"

    found = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            properties = resource["Properties"]
            found[properties["StateMachineType"]] = {
                "properties": properties,
                "definition": json.loads(render(properties["DefinitionString"], function_arn)),
            }
    return found


def _states(definition: dict):
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)


def test_express_definition_is_the_documented_one(assembly, configs):
    for env, config in configs.items():
        expected = documented_definition()
        expected["TimeoutSeconds"] = config.api.sync_timeout_seconds - 5
        assert machines(assembly, env)["EXPRESS"]["definition"] == expected, env


def test_standard_definition_adds_only_the_timeout_and_the_not_ready_retrier(assembly, configs):
    for env in configs:
        expected = copy.deepcopy(standard_definition())
        expected["TimeoutSeconds"] = 3600
        for name, state in _states(expected):
            if name in MODEL_TASKS:
                state["Retry"].append(NOT_READY_RETRIER)
        assert machines(assembly, env)["STANDARD"]["definition"] == expected, env


def test_express_stops_before_the_api_integration_times_out(assembly, configs):
    for env, config in configs.items():
        express = machines(assembly, env)["EXPRESS"]["definition"]
        analyze = next(
            r["Properties"]
            for r in assembly.resources(f"{env}/{c.API_STACK_ID}", "AWS::Lambda::Function").values()
            if r["Properties"]["Handler"] == c.function_handler(c.FUNCTION_ANALYZE)
        )
        assert express["TimeoutSeconds"] < analyze["Timeout"] < config.api.sync_timeout_seconds


def test_types_names_logging_and_tracing(assembly, configs):
    for env, config in configs.items():
        found = machines(assembly, env)
        assert set(found) == {"EXPRESS", "STANDARD"}
        assert found["EXPRESS"]["properties"]["StateMachineName"] == f"{config.prefix}-pipeline"
        assert found["STANDARD"]["properties"]["StateMachineName"] == f"{config.prefix}-jobs"
        for machine in found.values():
            properties = machine["properties"]
            assert properties["TracingConfiguration"] == {"Enabled": True}
            logging = properties["LoggingConfiguration"]
            assert logging["Level"] == "ERROR" and logging["IncludeExecutionData"] is False
            assert len(logging["Destinations"]) == 1


@pytest.mark.skipif(not (NODE_BIN / "asl-validator").exists(), reason="asl-validator not installed (make build)")
@pytest.mark.parametrize("kind", ["EXPRESS", "STANDARD"])
def test_synthesized_definitions_pass_asl_validator(assembly, configs, kind, tmp_path):
    for env in configs:
        path = tmp_path / f"{env}-{kind}.json"
        path.write_text(json.dumps(machines(assembly, env)[kind]["definition"]))
        result = subprocess.run(
            [str(NODE_BIN / "asl-validator"), "--json-path", str(path)],
            check=False,
            capture_output=True,
            text=True,
            env={"PATH": f"{NODE_BIN}:/usr/bin:/bin"},  # node_modules/.bin/node: Node 22
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _task_functions(definition: dict) -> dict[str, str]:
    """Task state -> its step function (`${SegmentFunctionArn}` -> segment)."""
    return {
        name: state["Resource"].removeprefix("${").removesuffix("FunctionArn}").lower()
        for name, state in _states(definition)
        if state["Type"] == "Task"
    }


@pytest.mark.parametrize("kind", ["EXPRESS", "STANDARD"])
def test_the_synthesized_machines_are_the_step_registry(assembly, configs, kind):
    """Every Task runs a registry step under its own state name, with the step's result path and retriers; every
    step has its Task; the Route Choice has one branch per routed task; the VLM answer and the routed tasks run
    in different branches of ONE Parallel state, and intent and keywords are one Task."""
    for env in configs:
        definition = machines(assembly, env)[kind]["definition"]
        tasks = _task_functions(definition)
        jobs_only = JOBS_ONLY_STEPS if kind == "EXPRESS" else set()
        assert set(tasks.values()) == set(steps.STEP_NAMES) - jobs_only, env
        states = dict(_states(definition))
        for state, function in tasks.items():
            step = steps.BY_NAME[function]
            assert state == step.state
            assert states[state].get("ResultPath") == step.result_path, state
            model = step.retry is steps.Retry.MODEL
            assert (
                any(r["ErrorEquals"] == ["ModelRetryableError", "DependencyError"] for r in states[state]["Retry"])
                == model
            )
            assert (NOT_READY_RETRIER in states[state]["Retry"]) == (model and kind == "STANDARD"), state
        route = states[steps.ROUTE_STATE]
        assert {(c["Variable"], c["StringEquals"]) for c in route["Choices"]} == {
            (steps.ROUTE_PATH, r.value) for r in steps.ROUTED if kind == "STANDARD" or not steps.ROUTES[r].jobs_only
        }
        parallel = definition["States"][steps.ANALYZE_STATE]
        assert parallel["Type"] == "Parallel" and len(parallel["Branches"]) == 2
        branch_tasks = [set(_task_functions(branch).values()) for branch in parallel["Branches"]]
        routed = {step for r in steps.ROUTED for step in steps.ROUTES[r].steps} - jobs_only
        assert branch_tasks[0] == {"understand", *routed} and branch_tasks[1] == {"plan", "answer"}
        assert not {"intent", "keywords"} & set(tasks.values())
