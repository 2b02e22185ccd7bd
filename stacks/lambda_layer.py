"""The dependencies layer of every request-path function: the arm64 wheels `make build` installs into
build/lambda-layer (requirements/lambda.txt). Synth never builds it (no Docker, no network): it only packages it."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import constants as c
from stacks.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64

# The Lambda Python runtime ships boto3 and these dependencies of botocore; aws-xray-sdk pulls them into the lock,
# but a second botocore in /opt/python would shadow the runtime's and no longer match its boto3.
RUNTIME_PROVIDED = ("botocore", "jmespath", "urllib3", "dateutil", "python_dateutil", "six", "s3transfer", "boto3")
EXCLUDE = [
    "python/bin",
    "**/__pycache__",
    "**/*.pyc",
    *(f"python/{name}" for name in RUNTIME_PROVIDED),
    *(f"python/{name}-*.dist-info" for name in RUNTIME_PROVIDED),
    "python/six.py",
]


class MissingBuildError(ConfigError):
    """A build output that synth packages is missing (app.py prints the one-line message)."""


def layer_directory(root: Path = ROOT) -> Path:
    """build/lambda-layer, checked: it must hold the `python/` tree of installed packages."""
    directory = root / c.LAMBDA_LAYER_DIR
    if not (directory / "python").is_dir():
        raise MissingBuildError(
            f"{c.LAMBDA_LAYER_DIR}/python is missing: run `make build` first "
            "(it installs the Lambda dependencies layer from requirements/lambda.txt)"
        )
    return directory


class DependenciesLayer(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, description: str, root: Path = ROOT) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(layer_directory(root)), exclude=EXCLUDE),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=description,
        )
