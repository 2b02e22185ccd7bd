"""`make destroy ENV=<env>`: after a confirmation (or CONFIRM=yes), `cdk destroy` every stack of the environment,
then what is left behind and how to remove it, from the config's removal policy."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from ops.common import OpsError, Runner, stack_name
from stacks import constants as c
from stacks.config import EnvironmentConfig


def leftovers(config: EnvironmentConfig, account: str) -> list[tuple[str, str]]:
    """(what stays, how to remove it) after `cdk destroy`, for the environment's removal policy."""
    region = f"--region {config.region}"
    buckets = [config.bucket_name(purpose, account) for purpose in ("artifacts", "requests", "access-logs")]
    table = c.idempotency_table_name(config.prefix)
    empty = (
        "python -c \"import boto3; boto3.resource('s3').Bucket('{b}').object_versions.delete()\" "
        "&& aws s3 rb s3://{b} " + region
    )
    common = [
        (
            "CDK assets (model packages, Lambda code, the Whisper image) in the CDKToolkit bucket and repository",
            "shared by every CDK app of the account: leave them, or remove the CDKToolkit stack when nothing uses it",
        ),
    ]
    if config.removal_policy == "retain":
        return [
            *[(f"bucket {b} (versioned: every object version)", empty.format(b=b)) for b in buckets],
            (
                f"DynamoDB table {table} (deletion protection on)",
                f"aws dynamodb update-table --table-name {table} --no-deletion-protection-enabled {region} && "
                f"aws dynamodb delete-table --table-name {table} {region}",
            ),
            (
                f"KMS keys of {config.prefix} (data key, alarm topic key): retained",
                "aws kms schedule-key-deletion --key-id <key id> --pending-window-in-days 7 "
                + region
                + " (find them: aws kms list-aliases, or the keys tagged environment="
                + config.name
                + "; anything still encrypted with them becomes unreadable)",
            ),
            *common,
        ]
    return [
        *[
            (
                f"bucket {b}, if it still held objects (CloudFormation deletes only empty buckets)",
                empty.format(b=b) + ", then make destroy again",
            )
            for b in buckets
        ],
        (
            f"KMS keys of {config.prefix}: scheduled for deletion (7-day pending window), billed until then",
            "aws kms cancel-key-deletion --key-id <key id> keeps one",
        ),
        *common,
    ]


def destroy(
    config: EnvironmentConfig,
    account: str,
    run: Runner,
    console: Console,
    *,
    confirmed: bool,
    ask: Callable[[str], str] = input,
) -> None:
    env = config.name
    stacks = ", ".join(
        stack_name(config, s) for s in (c.MONITORING_STACK_ID, c.API_STACK_ID, c.HOSTING_STACK_ID, c.STORAGE_STACK_ID)
    )
    console.print(f"[bold]destroy {env}[/] in account {account}, {config.region}: {stacks}")
    console.print(f"removal_policy: {config.removal_policy}")
    if not confirmed:
        answer = ask(f"type the environment name ({env}) to destroy it: ").strip()
        if answer != env:
            raise OpsError("not confirmed: nothing destroyed", status=2)
    if run(["cdk", "destroy", f"{env}/*", "--force"]) != 0:
        raise OpsError(f"cdk destroy {env}/* failed: see its output above (a non-empty bucket is the usual cause)")
    console.print(f"[bold]{env} destroyed.[/] Left behind, and how to remove it:")
    for what, how in leftovers(config, account):
        console.print(f"- {what}\n    {how}")
