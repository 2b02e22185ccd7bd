"""Infra tests read the cloud assembly of ONE synth of the real app, run the way `cdk synth` runs it:
a fresh `python app.py` with cdk-nag on, no AWS credentials, no Docker and no reachable network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks.config import load_all

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Assembly:
    outdir: Path
    stdout: str
    stderr: str
    templates: dict[str, dict]  # "dev/Hosting" -> template
    metadata: dict[str, dict]  # "dev/Hosting" -> construct metadata of the stack artifact

    def resources(self, stack: str, kind: str) -> dict[str, dict]:
        return {k: v for k, v in self.templates[stack]["Resources"].items() if v["Type"] == kind}

    def all_resources(self, kind: str) -> dict[str, dict]:
        return {f"{stack}:{k}": v for stack in self.templates for k, v in self.resources(stack, kind).items()}


def offline_env(outdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("DOCKER_HOST",)}
    env.update(
        CDK_OUTDIR=str(outdir),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        # Anything that tried the network or Docker would fail fast on these.
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
        DOCKER_HOST="unix:///nonexistent/docker.sock",
        CDK_DOCKER="/nonexistent/docker",
        PATH=os.pathsep.join(
            [str(ROOT / "node_modules" / ".bin"), os.path.dirname(sys.executable), "/usr/bin", "/bin"]
        ),
    )
    return env


def read_assembly(outdir: Path) -> tuple[dict, dict]:
    templates, metadata = {}, {}
    for manifest_path in outdir.glob("assembly-*/manifest.json"):
        manifest = json.loads(manifest_path.read_text())
        for artifact in manifest["artifacts"].values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            name = artifact["displayName"]
            template_file = manifest_path.parent / artifact["properties"]["templateFile"]
            templates[name] = json.loads(template_file.read_text())
            extra = artifact.get("additionalMetadataFile")
            metadata[name] = (
                json.loads((manifest_path.parent / extra).read_text()) if extra else artifact.get("metadata", {})
            )
    return templates, metadata


@pytest.fixture(scope="session")
def assembly(tmp_path_factory) -> Assembly:
    outdir = tmp_path_factory.mktemp("cdk.out")
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=offline_env(outdir), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"synth failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    templates, metadata = read_assembly(outdir)
    return Assembly(outdir=outdir, stdout=result.stdout, stderr=result.stderr, templates=templates, metadata=metadata)


@pytest.fixture(scope="session")
def configs():
    return {config.name: config for config in load_all()}
