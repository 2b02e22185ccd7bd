"""docs/pipeline.md and docs/api.md against the code: the state machine definition, the function table, the
error-code tables."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess

import pytest
from vlp import errors
from vlp_testkit import ROOT, STEP_MODULES, documented_definition, standard_definition

PIPELINE = (ROOT / "docs" / "pipeline.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()
HANDLERS = ("uploads", "analyze", "jobs", *STEP_MODULES)


def _states(machine: dict):
    for name, state in machine["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)


def test_every_task_resource_is_a_step_handler():
    resources = {state["Resource"] for _, state in _states(standard_definition()) if state["Type"] == "Task"}
    assert resources == {"${" + name.capitalize() + "FunctionArn}" for name in STEP_MODULES}


def test_retry_and_catch_use_real_error_names():
    for name, state in _states(documented_definition()):
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                assert error in errors.ERROR_NAMES or error.startswith(("States.", "Lambda.")), (name, error)
    retried = {e for _, s in _states(documented_definition()) for r in s.get("Retry", []) for e in r["ErrorEquals"]}
    assert {"ModelRetryableError", "ModelTimeoutError", "DependencyError"} <= retried
    assert not retried & set(errors.TERMINAL_ERROR_NAMES)


@pytest.mark.skipif(
    not (ROOT / "node_modules" / ".bin" / "asl-validator").exists()
    or (not shutil.which("node") and not (ROOT / "node_modules" / ".bin" / "node").exists()),
    reason="asl-validator not installed",
)
def test_definition_passes_asl_validator(tmp_path):
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(documented_definition()))
    env = {"PATH": f"{ROOT / 'node_modules' / '.bin'}:/usr/bin:/bin"}
    result = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "asl-validator"), "--json-path", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_function_table_lists_every_handler():
    documented = set(re.findall(r"`vlp\.handlers\.([a-z_]+)\.handler`", PIPELINE))
    assert documented == set(HANDLERS)
    for name in HANDLERS:
        assert callable(importlib.import_module(f"vlp.handlers.{name}").handler)


@pytest.mark.parametrize("document", [PIPELINE, API], ids=["pipeline.md", "api.md"])
def test_error_code_tables_match_the_code(document):
    rows = dict(re.findall(r"^\| `([A-Z0-9_<>]+)` \| (\d{3}) \|", document, flags=re.M))
    for code, (status, _) in errors.CODES.items():
        step_code = re.match(
            rf"^({'|'.join(s.upper() for s in errors.MODEL_STEPS)})_(FAILED|UNAVAILABLE|TIMEOUT)$", code
        )
        key = f"<STEP>_{step_code.group(2)}" if step_code else code
        assert rows.get(key) == str(status), f"{code}: documented {rows.get(key)}, raised with {status}"
    assert set(rows) - {f"<STEP>_{s}" for s in ("FAILED", "UNAVAILABLE", "TIMEOUT")} <= set(errors.CODES)


def test_documented_environment_variables_exist():
    from vlp import settings

    aliases = {
        field.alias
        for model in (
            settings.UploadsSettings,
            settings.AnalyzeSettings,
            settings.JobsSettings,
            settings.PipelineSettings,
        )
        for field in model.model_fields.values()
    }
    section = PIPELINE.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| \**`([A-Z0-9_<>]+)`", section, flags=re.M))
    for alias in aliases - {None}:
        assert alias in documented, alias
    for name in documented - aliases:
        assert name in {"ENDPOINT_<ROLE>", "INFERENCE_COMPONENT_<ROLE>", "POWERTOOLS_LOG_LEVEL"}, name


def test_every_request_field_and_option_is_in_the_api_tables():
    from vlp.api.models import AnalyzeOptions, AnalyzeRequest

    section = API.split("## 2. Analyze", 1)[1].split("### ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.M))
    assert set(AnalyzeRequest.model_fields) | set(AnalyzeOptions.model_fields) <= documented
