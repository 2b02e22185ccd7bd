"""make deploy (the first-deploy order and what it waits for) and make destroy (confirmation, what stays), with the
AWS calls stubbed and the cdk/make commands recorded instead of run."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from rich.console import Console

from ops.common import OpsError
from ops.deploy import deploy
from ops.destroy import destroy, leftovers
from ops.preflight import API_TIMEOUT_QUOTA_NAME

ACCOUNT = "123456789012"  # the stubbed caller (tests/unit/ops/conftest.py)
PLAN = {"vlm": ["weights/vlm/"], "asr": ["weights/asr/"]}


class Recorder:
    def __init__(self, status: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.status = status

    def __call__(self, argv: Sequence[str]) -> int:
        self.commands.append(list(argv))
        return self.status


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_first_deploy_storage_then_staging_then_everything(stubs, configs):
    config = configs["dev"]
    bucket = config.bucket_name("artifacts", ACCOUNT)
    stubs.ready(config)
    stubs.weights(bucket, {"weights/vlm/": 0, "weights/asr/": 2})  # after the Storage stack: vlm missing
    stubs.weights(bucket, {"weights/vlm/": 5, "weights/asr/": 2})  # after staging
    run = Recorder()
    console, out = _console()
    deploy(config, stubs.clients, run, console, stage_weights=True, plan=lambda _c: PLAN)
    assert run.commands == [
        ["cdk", "deploy", "dev/Storage", "--require-approval", "broadening"],
        # only the role that lacks weights; folders already staged are skipped
        ["make", "--no-print-directory", "stage-weights", "ENV=dev", "ROLE=vlm", "STAGE_ARGS=--missing-only"],
        ["cdk", "deploy", "dev/*", "--require-approval", "broadening"],
    ]
    text = out.getvalue()
    assert "waiting for CloudFormation" in text and "staging vlm" in text and "InService" in text


def test_missing_weights_stop_before_the_endpoints_unless_staging_is_asked(stubs, configs):
    config = configs["dev"]
    stubs.ready(config)
    stubs.weights(config.bucket_name("artifacts", ACCOUNT), {"weights/vlm/": 0, "weights/asr/": 0})
    run = Recorder()
    with pytest.raises(OpsError, match=r"no weights for asr, vlm in .*: run `make stage-weights ENV=dev ROLE=asr,vlm`"):
        deploy(config, stubs.clients, run, _console()[0], plan=lambda _c: PLAN)
    assert run.commands == [["cdk", "deploy", "dev/Storage", "--require-approval", "broadening"]]


def test_a_preflight_blocker_deploys_nothing(stubs, configs):
    config = configs["dev"]
    stubs.identity()
    stubs.ssm.add_client_error("get_parameter", service_error_code="ParameterNotFound", http_status_code=400)
    stubs.quota_lists("sagemaker", {})
    stubs.quota_lists("apigateway", {API_TIMEOUT_QUOTA_NAME: 120_000})
    run = Recorder()
    console, out = _console()
    with pytest.raises(OpsError, match="1 blocker"):
        deploy(config, stubs.clients, run, console, plan=lambda _c: PLAN)
    assert run.commands == [] and "cdk bootstrap aws://123456789012/us-east-1" in out.getvalue()


def test_a_failed_storage_deploy_stops(stubs, configs):
    config = configs["dev"]
    stubs.ready(config)
    run = Recorder(status=1)
    with pytest.raises(OpsError, match="cdk deploy dev/Storage failed"):
        deploy(config, stubs.clients, run, _console()[0], plan=lambda _c: PLAN)
    assert len(run.commands) == 1


def test_destroy_asks_and_does_nothing_without_the_environment_name(configs):
    run = Recorder()
    with pytest.raises(OpsError, match="not confirmed") as raised:
        destroy(configs["dev"], ACCOUNT, run, _console()[0], confirmed=False, ask=lambda _prompt: "y")
    assert raised.value.status == 2 and run.commands == []


@pytest.mark.parametrize("confirmed", [True, False])
def test_destroy_runs_cdk_destroy_and_lists_what_stays(configs, confirmed):
    config = configs["prod"]
    run = Recorder()
    console, out = _console()
    destroy(config, ACCOUNT, run, console, confirmed=confirmed, ask=lambda _prompt: "prod")
    assert run.commands == [["cdk", "destroy", "prod/*", "--force"]]
    text = out.getvalue()
    assert f"bucket {config.bucket_name('artifacts', ACCOUNT)} (versioned" in text
    assert "schedule-key-deletion" in text and "--no-deletion-protection-enabled" in text


def test_what_stays_follows_the_removal_policy(configs):
    retained = dict(leftovers(configs["prod"], ACCOUNT))
    destroyed = dict(leftovers(configs["dev"], ACCOUNT))
    assert any("deletion protection" in what for what in retained)
    assert not any("deletion protection" in what for what in destroyed)
    assert any("scheduled for deletion" in what for what in destroyed)
    assert (
        sum(what.startswith("bucket ") for what in retained)
        == sum(what.startswith("bucket ") for what in destroyed)
        == 3
    )
