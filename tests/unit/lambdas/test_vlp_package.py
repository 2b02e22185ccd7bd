"""The Lambda code package: only our own code, light imports (cold start), nothing from stacks/ or model libs."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from typing import Any

from vlp.steps import STEP_NAMES
from vlp_testkit import ROOT

CODE = ROOT / "lambdas"
HANDLERS = ("uploads", "analyze", "jobs", *STEP_NAMES)


def _printed_by(code: str) -> Any:
    """The JSON `code` prints last, run in a fresh interpreter that sees only the Lambda package (as Lambda's
    init does: nothing imported yet, nothing from the tests' path)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(CODE)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_package_holds_only_the_vlp_code():
    top = {path.name for path in CODE.iterdir() if path.name != "__pycache__"}
    assert top == {"vlp"}
    assert all(path.suffix == ".py" for path in CODE.rglob("*") if path.is_file() and "__pycache__" not in path.parts)


def test_no_forbidden_imports():
    forbidden = {"stacks", "torch", "numpy", "transformers", "boto3", "requests", "aws_cdk"}
    for path in CODE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"


def test_handlers_import_light():
    """Importing every handler (as Lambda's init does) loads neither Pillow nor boto3 nor Powertools' parser
    models, nor pydantic or the X-Ray SDK: Pillow only loads in the functions that decode or draw images, when they
    do; pydantic with the first request or event; the X-Ray SDK with the first traced invocation (vlp.tracing)."""
    code = (
        "import json, sys\n"
        + "".join(f"import vlp.handlers.{name}\n" for name in HANDLERS)
        + "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PIL', 'boto3', 's3transfer', 'numpy', 'pydantic', 'aws_xray_sdk') "
        "or m.startswith('aws_lambda_powertools.utilities.parser'))))"
    )
    assert _printed_by(code) == []


def test_a_step_handler_loads_its_own_logic_at_its_first_invocation_only():
    """Cold start: importing a step's handler (the init phase) loads no step logic (vlp.pipeline) and no pydantic;
    its logic module (what vlp.entry imports at the first invocation) loads none of the other steps' (one
    subprocess for all: each import's modules are what it added)."""
    code = (
        "import importlib, json, sys\n"
        "import vlp.steps\n"
        "loaded = {}\n"
        "def added(module):\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(module)\n"
        "    return sorted(set(sys.modules) - before)\n"
        "for step in vlp.steps.STEPS:\n"
        "    loaded[step.name] = [added(f'vlp.handlers.{step.name}'), added(step.logic)]\n"
        "    for module in [m for m in sys.modules if m.startswith('vlp.')]:\n"
        "        del sys.modules[module]\n"
        "print(json.dumps(loaded))"
    )
    loaded = _printed_by(code)
    assert set(loaded) == set(STEP_NAMES)
    for name, (at_import, at_first_call) in loaded.items():
        assert not [module for module in at_import if module.startswith(("vlp.pipeline", "pydantic"))], name
        assert f"vlp.pipeline.{name}" in at_first_call, name
        others = {f"vlp.pipeline.{other}" for other in STEP_NAMES if other != name} - {"vlp.pipeline.validate"}
        assert not others & set(at_first_call), (name, sorted(others & set(at_first_call)))
