"""`make deploy ENV=<env>`: a first deploy in order, then every later one the same way (cdk deploy is the engine).

1. preflight (credentials, bootstrap, quotas, secrets): stop on a blocker;
2. the Storage stack (buckets, keys), which the weights go into;
3. the weights: every role's S3 prefix holds objects, or `make stage-weights` runs (STAGE_WEIGHTS=yes), or stop;
4. every stack of the environment (endpoints, API, monitoring).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from ops.common import OpsError, Runner, print_table, stack_name
from ops.preflight import Clients, WeightsPlan, blockers, missing_weights, run_checks, weights_plan
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
    say: Callable[[str], None] | None = None,
) -> None:
    say = say or (lambda text: console.print(f"[bold]deploy {config.name}:[/] {text}"))
    env = config.name
    rows = run_checks(config, clients, weights=False, plan=plan)
    print_table(f"preflight {env}", rows, console)
    if blockers(rows):
        raise OpsError(f"preflight found {len(blockers(rows))} blocker(s): fix the rows marked fail, then run again")
    account = rows[0].detail.split("(account ")[1].split(",")[0]

    storage = f"{env}/{c.STORAGE_STACK_ID}"
    say(f"deploying {storage} (stack {stack_name(config, c.STORAGE_STACK_ID)}): waiting for CloudFormation")
    if run(["cdk", "deploy", storage, "--require-approval", "broadening"]) != 0:
        raise OpsError(f"cdk deploy {storage} failed: see its output above")

    say("checking the weights under each role's prefix in the artifacts bucket")
    bucket, missing = missing_weights(config, clients, account, plan)
    if missing is None:
        raise OpsError(f"bucket {bucket} is missing although {storage} deployed: check the stack's events")
    if missing:
        roles = ", ".join(sorted(missing))
        if not stage_weights:
            raise OpsError(
                f"no weights in {bucket} for {roles}: run `make stage-weights ENV={env}` (internet, HF_TOKEN for "
                f"gated models), or `make deploy ENV={env} STAGE_WEIGHTS=yes` to stage them now"
            )
        say(f"staging weights for {roles} into {bucket}: waiting for the Hub downloads and S3 uploads")
        if run(["make", "--no-print-directory", "stage-weights", f"ENV={env}"]) != 0:
            raise OpsError("make stage-weights failed: see its output above")
        _, still = missing_weights(config, clients, account, plan)
        if still:
            raise OpsError(f"still no weights for {', '.join(sorted(still))} after staging")

    say(
        f"deploying every stack of {env}: waiting for the endpoints to come InService "
        "(10-30 minutes per GPU endpoint; a scale-to-zero endpoint starts with one instance)"
    )
    if run(["cdk", "deploy", f"{env}/*", "--require-approval", "broadening"]) != 0:
        raise OpsError(f"cdk deploy {env}/* failed: see its output above (endpoint updates roll back on their alarms)")
    say(f"done: `make smoke ENV={env}` checks it end to end")
