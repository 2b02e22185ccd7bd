"""A small interpreter of the Amazon States Language subset the pipeline definition uses (docs/pipeline.md),
running the real Lambda handlers in-process. It lets the tests check that the documented definition and the
Lambdas' inputs, outputs and errors fit together, without AWS.

Supported: Task (Resource -> a Python callable, ResultPath, OutputPath, Retry without waiting, Catch), Choice
(Variable with IsPresent / IsNull / StringEquals / BooleanEquals, And / Or / Not, Default), Parallel (Branches,
ResultSelector, ResultPath, Catch), Pass, Succeed, Fail (Error/Cause or ErrorPath/CausePath). JSONPath: ``$``,
``$.a.b``, ``$[0]``. A Lambda exception becomes ``{"Error": <class name>, "Cause": <Lambda error JSON>}`` as
AWS Lambda's Python runtime reports it.
"""

from __future__ import annotations

import copy
import json
import re
import traceback
from collections.abc import Callable
from typing import Any

MAX_STATE_BYTES = 262_144
_TOKEN = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
_MISSING = object()


class StatesError(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


def _tokens(path: str) -> list[str | int]:
    if not path.startswith("$"):
        raise ValueError(f"bad path {path}")
    rest = path[1:]
    out: list[str | int] = []
    position = 0
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if not match:
            raise ValueError(f"unsupported path {path}")
        out.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    return out


def get_path(data: Any, path: str, default: Any = _MISSING) -> Any:
    value = data
    for token in _tokens(path):
        if (isinstance(token, int) and isinstance(value, list) and token < len(value)) or (
            isinstance(token, str) and isinstance(value, dict) and token in value
        ):
            value = value[token]
        else:
            if default is _MISSING:
                raise StatesError("States.Runtime", f"path {path} not found")
            return default
    return value


def set_path(data: Any, path: str | None, value: Any) -> Any:
    if path is None:
        return data
    tokens = _tokens(path)
    if not tokens:
        return value
    root = copy.deepcopy(data)
    target = root
    for token in tokens[:-1]:
        target = target.setdefault(token, {})
    target[tokens[-1]] = value
    return root


def apply_template(template: Any, data: Any) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = get_path(data, value)
            else:
                out[key] = apply_template(value, data)
        return out
    if isinstance(template, list):
        return [apply_template(item, data) for item in template]
    return template


def _check_size(value: Any, where: str) -> None:
    size = len(json.dumps(value).encode("utf-8"))
    if size > MAX_STATE_BYTES:
        raise StatesError("States.DataLimitExceeded", f"{where}: {size} bytes")


def _matches(names: list[str], error: str) -> bool:
    if error in names:
        return True
    if "States.ALL" in names and error != "States.Runtime":
        return True
    return "States.TaskFailed" in names and error not in ("States.Timeout", "States.Runtime")


def _evaluate(rule: dict, data: Any) -> bool:
    if "And" in rule:
        return all(_evaluate(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(_evaluate(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not _evaluate(rule["Not"], data)
    value = get_path(data, rule["Variable"], default=_MISSING)
    if "IsPresent" in rule:
        return (value is not _MISSING) == rule["IsPresent"]
    if value is _MISSING:
        raise StatesError("States.Runtime", f"Invalid path {rule['Variable']}: not found in the input")
    if "IsNull" in rule:
        return (value is None) == rule["IsNull"]
    if "StringEquals" in rule:
        return isinstance(value, str) and value == rule["StringEquals"]
    if "BooleanEquals" in rule:
        return isinstance(value, bool) and value == rule["BooleanEquals"]
    raise ValueError(f"unsupported choice rule {rule}")


class AslRunner:
    """Run a definition; ``resources`` maps each Task Resource string to ``callable(event) -> result``."""

    def __init__(self, definition: dict, resources: dict[str, Callable[[Any], Any]]) -> None:
        self.definition = definition
        self.resources = resources
        self.visited: list[str] = []
        self.retries: dict[str, int] = {}
        # what Step Functions Standard keeps in an execution's history: each state's input and output
        self.history: list[dict[str, Any]] = []

    def run(self, execution_input: Any) -> dict[str, Any]:
        self.visited = []
        self.retries = {}
        self.history = []
        try:
            output = self._machine(self.definition, execution_input)
        except StatesError as failure:
            return {"status": "FAILED", "error": failure.error, "cause": failure.cause}
        return {"status": "SUCCEEDED", "output": json.dumps(output)}

    def _machine(self, machine: dict, data: Any) -> Any:
        name = machine["StartAt"]
        while True:
            state = machine["States"][name]
            self.visited.append(name)
            self.history.append({"state": name, "input": copy.deepcopy(data)})
            _check_size(data, f"input of {name}")
            kind = state["Type"]
            if kind == "Fail":
                error = get_path(data, state["ErrorPath"]) if "ErrorPath" in state else state.get("Error", "")
                cause = get_path(data, state["CausePath"]) if "CausePath" in state else state.get("Cause", "")
                raise StatesError(error, cause)
            if kind == "Succeed":
                return data
            if kind == "Choice":
                name = next((rule["Next"] for rule in state["Choices"] if _evaluate(rule, data)), None) or state.get(
                    "Default"
                )
                if name is None:
                    raise StatesError("States.NoChoiceMatched", "no choice matched")
                continue
            try:
                result = self._execute(name, state, data)
            except StatesError as failure:
                catcher = next((c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], failure.error)), None)
                if catcher is None:
                    raise
                data = set_path(data, catcher.get("ResultPath", "$"), {"Error": failure.error, "Cause": failure.cause})
                name = catcher["Next"]
                continue
            if "ResultSelector" in state:
                result = apply_template(state["ResultSelector"], result)
            data = set_path(data, state.get("ResultPath", "$"), result)
            if "OutputPath" in state:
                data = get_path(data, state["OutputPath"])
            _check_size(data, f"output of {name}")
            self.history.append({"state": name, "output": copy.deepcopy(data)})
            if state.get("End"):
                return data
            name = state["Next"]

    def _execute(self, name: str, state: dict, data: Any) -> Any:
        effective = get_path(data, state["InputPath"]) if "InputPath" in state else data
        if "Parameters" in state:
            effective = apply_template(state["Parameters"], effective)
        if state["Type"] == "Pass":
            return state.get("Result", effective)
        if state["Type"] == "Parallel":
            return [self._machine(branch, copy.deepcopy(effective)) for branch in state["Branches"]]
        if state["Type"] != "Task":
            raise ValueError(f"unsupported state type {state['Type']}")
        function = self.resources[state["Resource"]]
        attempts: dict[int, int] = {}
        while True:
            try:
                result = function(json.loads(json.dumps(effective)))
                return json.loads(json.dumps(result))
            except StatesError:
                raise
            except Exception as exc:
                error = type(exc).__name__
                cause = json.dumps(
                    {
                        "errorMessage": str(exc),
                        "errorType": error,
                        "requestId": "00000000-0000-0000-0000-000000000000",
                        "stackTrace": traceback.format_tb(exc.__traceback__)[-3:],
                    }
                )
                for index, retrier in enumerate(state.get("Retry", [])):
                    if _matches(retrier["ErrorEquals"], error):
                        if attempts.get(index, 0) < retrier.get("MaxAttempts", 3):
                            attempts[index] = attempts.get(index, 0) + 1
                            self.retries[name] = self.retries.get(name, 0) + 1
                            break
                        raise StatesError(error, cause) from None
                else:
                    raise StatesError(error, cause) from None
