"""The local Step Functions service: writes its configuration (the state machines exactly as synthesized, their
Lambda ARNs resolved to the local functions by local/assembly.py) and gives the command that runs
local/stepfunctions.mjs (aws-local-stepfunctions 3 on Node 22, from node_modules)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from local.common import ACCOUNT, REGION, ROOT, write_json

NODE = ROOT / "node_modules" / ".bin" / "node"
SCRIPT = Path(__file__).resolve().parent / "stepfunctions.mjs"


def node_binary() -> str:
    if NODE.exists():
        return str(NODE)
    found = shutil.which("node")
    if found is None:
        raise SystemExit("Node 22 is needed for the local Step Functions: run `make install` (npm ci)")
    return found


def write_config(path: Path, *, port: int, lambda_endpoint: str, machines: list[dict]) -> Path:
    write_json(
        path,
        {"port": port, "lambdaEndpoint": lambda_endpoint, "region": REGION, "account": ACCOUNT, "machines": machines},
    )
    return path


def command(config_path: Path) -> list[str]:
    return [node_binary(), str(SCRIPT), str(config_path)]


def definitions(config_path: Path) -> dict[str, dict]:
    """name -> the definition the local service runs (for tests)."""
    config = json.loads(config_path.read_text())
    return {machine["name"]: json.loads(machine["definition"]) for machine in config["machines"]}
