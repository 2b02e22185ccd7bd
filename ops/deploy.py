"""`make deploy ENV=<env>`: a first deploy in order, then every later one the same way (cdk deploy is the engine).

1. preflight (credentials, bootstrap, quotas, secrets): stop on a blocker;
2. the Storage stack (buckets, keys), which the weights go into;
3. the weights: every role's S3 prefix holds objects and every network-isolated DJL role's bundle is complete, or
   `make stage-weights` runs for the roles that lack them (STAGE_WEIGHTS=yes; staged folders are skipped), or stop;
4. every stack of the environment (endpoints, API, monitoring).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from ops.common import OpsError, Runner, print_table, stack_name
from ops.preflight import (
    BundlesPlan,
    Clients,
    WeightsPlan,
    blockers,
    bundles_plan,
    checks_and_account,
    missing_bundles,
    missing_weights,
    weights_plan,
)
from stacks import constants as c
from stacks.config import EnvironmentConfig


def deploy(
    config: EnvironmentConfig,
    clients: Clients,
    run: Runner,
    console: Console,
    *,
    stage_weights: bool = False,
    plan: WeightsPlan = weights_plan,
    bundles: BundlesPlan = bundles_plan,
    say: Callable[[str], None] | None = None,
) -> None:
    say = say or (lambda text: console.print(f"[bold]deploy {config.name}:[/] {text}"))
    env = config.name
    rows, account = checks_and_account(config, clients, weights=False)
    print_table(f"preflight {env}", rows, console)
    failing = blockers(rows)
    if failing:
        raise OpsError(f"preflight found {len(failing)} blocker(s): fix the rows marked fail, then run again")

    storage = f"{env}/{c.STORAGE_STACK_ID}"
    say(f"deploying {storage} (stack {stack_name(config, c.STORAGE_STACK_ID)}): waiting for CloudFormation")
    if run(["cdk", "deploy", storage, "--require-approval", "broadening"]) != 0:
        raise OpsError(f"cdk deploy {storage} failed: see its output above")

    say("checking the weights under each role's prefix and each isolated DJL role's bundle in the artifacts bucket")
    fixed = bundles(config)  # hashes the packages once

    def unstaged() -> tuple[str, set[str], set[str]]:
        bucket, missing = missing_weights(config, clients, account, plan)
        _, unbundled = missing_bundles(config, clients, account, lambda _config: fixed)
        if missing is None or unbundled is None:
            raise OpsError(f"bucket {bucket} is missing although {storage} deployed: check the stack's events")
        return bucket, set(missing), set(unbundled)

    bucket, no_weights, no_bundle = unstaged()
    if no_weights or no_bundle:
        roles = ",".join(sorted(no_weights | no_bundle))
        what = "; ".join(
            text
            for text in (
                f"no weights for {', '.join(sorted(no_weights))}" if no_weights else "",
                f"no bundle for {', '.join(sorted(no_bundle))}" if no_bundle else "",
            )
            if text
        )
        if not stage_weights:
            raise OpsError(
                f"{what} in {bucket}: run `make stage-weights ENV={env} ROLE={roles}` (internet, HF_TOKEN for "
                f"gated models; `make packages` first for bundles), or `make deploy ENV={env} STAGE_WEIGHTS=yes`"
            )
        say(f"staging {roles} into {bucket} ({what}): waiting for the Hub downloads, S3 uploads and copies")
        command = ["make", "--no-print-directory", "stage-weights", f"ENV={env}", f"ROLE={roles}"]
        if run([*command, "STAGE_ARGS=--missing-only"]) != 0:
            raise OpsError("make stage-weights failed: see its output above")
        _, no_weights, no_bundle = unstaged()
        if no_weights or no_bundle:
            raise OpsError(f"still not staged after staging: {', '.join(sorted(no_weights | no_bundle))}")

    say(
        f"deploying every stack of {env}: waiting for the endpoints to come InService "
        "(10-30 minutes per GPU endpoint; a scale-to-zero endpoint starts with one instance)"
    )
    if run(["cdk", "deploy", f"{env}/*", "--require-approval", "broadening"]) != 0:
        raise OpsError(f"cdk deploy {env}/* failed: see its output above (endpoint updates roll back on their alarms)")
    say(f"done: `make smoke ENV={env}` checks it end to end")
