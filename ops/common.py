"""What the operator commands share: the environment's config, an AWS session, one-line failures, the result table."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from stacks.config import CONFIG_DIR, EnvironmentConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
Status = Literal["ok", "warn", "fail"]
# Runs a command (cdk, make) and returns its exit status; tests pass a recorder.
Runner = Callable[[Sequence[str]], int]


NO_CREDENTIALS = (
    "no AWS credentials: set AWS_PROFILE (aws sso login --profile ...) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "then run again"
)


class OpsError(Exception):
    """A failure the operator can act on: printed as one line, exit status 1 (2 for usage)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Check:
    """One row of a preflight table. `blocker`: a failing row stops the deploy (exit non-zero)."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    blocker: bool = True


def load_env(env: str, config_dir: Path = CONFIG_DIR) -> EnvironmentConfig:
    path = config_dir / f"{env}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml")))
        raise OpsError(f"no config/{env}.yaml (environments: {known})", status=2)
    return load_config(path)


def stack_name(config: EnvironmentConfig, stack_id: str) -> str:
    """The CloudFormation name CDK gives a stage's stack: `<env>-<StackId>`, e.g. dev-Storage."""
    return f"{config.name}-{stack_id}"


def session(config: EnvironmentConfig, profile: str | None = None) -> Any:
    """A boto3 session in the environment's region (credentials from the usual chain or `profile`)."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=config.region)
    except ProfileNotFound as error:
        raise OpsError(f"AWS profile not found: {error}") from None


def caller_identity(sts: Any) -> dict[str, str]:
    """STS GetCallerIdentity; no credentials (or expired ones) become one OpsError line."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return sts.get_caller_identity()
    except NoCredentialsError:
        raise OpsError(NO_CREDENTIALS) from None
    except ClientError as error:
        err = error.response.get("Error", {})
        raise OpsError(f"AWS credentials rejected: {err.get('Code')}: {err.get('Message')}") from None
    except BotoCoreError as error:
        raise OpsError(f"cannot reach AWS STS: {error}") from None


def print_table(title: str, checks: Sequence[Check], console: Console) -> None:
    table = Table(title=title, show_lines=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    style = {"ok": "green", "warn": "yellow", "fail": "red"}
    for check in checks:
        label = check.status if check.blocker or check.status == "ok" else f"{check.status} (not blocking)"
        table.add_row(check.name, f"[{style[check.status]}]{label}[/]", check.detail, check.fix)
    console.print(table)


def run_command(argv: Sequence[str]) -> int:
    """The real runner: the command's output goes straight to the terminal."""
    print("$ " + " ".join(argv), flush=True)
    return subprocess.run(list(argv), cwd=ROOT, check=False).returncode


def fail(message: str, status: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status
