"""python -m ops {preflight,deploy,smoke,destroy} --env <env>: the Makefile's operator targets."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from ops.common import NO_CREDENTIALS, OpsError, caller_identity, fail, load_env, run_command, session


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    parser.add_argument("command", choices=("preflight", "deploy", "smoke", "destroy"))
    parser.add_argument("--env", required=True, help="config/<env>.yaml")
    parser.add_argument("--profile", default=os.environ.get("AWS_PROFILE") or None)
    parser.add_argument("--stage-weights", action="store_true", help="deploy: stage missing weights")
    parser.add_argument("--yes", action="store_true", help="destroy: no confirmation prompt")
    parser.add_argument("--api-url", help="smoke: this API (e.g. local mode) instead of the stack's ApiUrl")
    parser.add_argument("--auth", choices=("iam", "api_key", "cognito", "none"), help="smoke with --api-url")
    args = parser.parse_args(argv)
    console = console or Console()
    try:
        config = load_env(args.env)
        if args.command == "smoke":
            return _smoke(args, config.region, console)
        boto = session(config, args.profile)
        from ops.preflight import Clients

        clients = Clients.from_session(boto)
        if args.command == "preflight":
            from ops.common import print_table
            from ops.preflight import blockers, run_checks

            rows = run_checks(config, clients)
            print_table(f"preflight {config.name}", rows, console)
            failing = blockers(rows)
            if failing:
                return fail(f"{len(failing)} blocker(s): {', '.join(row.name for row in failing)}")
            return 0
        if args.command == "deploy":
            from ops.deploy import deploy

            deploy(config, clients, run_command, console, stage_weights=args.stage_weights)
            return 0
        from ops.destroy import destroy

        account = caller_identity(clients.sts)["Account"]
        destroy(config, account, run_command, console, confirmed=args.yes)
        return 0
    except OpsError as error:
        return fail(str(error), error.status)
    except KeyboardInterrupt:
        return fail("interrupted", 130)


def _smoke(args: argparse.Namespace, region: str, console: Console) -> int:
    from vlp_client import VlpClient, VlpError

    from ops.smoke import smoke

    try:
        if args.api_url:
            client = VlpClient(args.api_url, auth=args.auth or "iam", profile=args.profile, region=region)
        else:
            client = VlpClient.from_env(args.env, args.profile, region, **({"auth": args.auth} if args.auth else {}))
    except VlpError as error:
        if error.code == "NO_CREDENTIALS":
            raise OpsError(NO_CREDENTIALS) from None
        raise OpsError(str(error)) from None
    smoke(client, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
