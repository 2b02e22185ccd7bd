"""make preflight: each check against stubbed AWS answers (botocore Stubber), and the command without credentials."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import yaml

from ops.__main__ import main
from ops.preflight import (
    API_TIMEOUT_QUOTA_NAME,
    blockers,
    check_api_timeout,
    check_bootstrap,
    check_endpoint_quotas,
    check_identity,
    check_secrets,
    check_weights,
    run_checks,
    weights_plan,
)
from stacks.config import CONFIG_DIR, parse_config

ACCOUNT = "123456789012"  # the stubbed caller (tests/unit/ops/conftest.py)

PLAN = {"vlm": ["weights/vlm/"], "grounded_sam": ["weights/grounded_sam/grounding_dino/", "weights/grounded_sam/sam/"]}


def _fleet(config) -> Counter:
    """Instances per type at every enabled role's maximum."""
    fleet: Counter = Counter()
    for _role, model in config.models.enabled():
        fleet[model.instance_type] += model.max_instances
    return fleet


def _quota_name(instance_type: str) -> str:
    return f"{instance_type} for endpoint usage"


def test_a_ready_account_passes_every_check(stubs, configs):
    config = configs["prod"]  # canary: blue/green needs twice the fleet
    fleet = _fleet(config)
    stubs.identity()
    stubs.bootstrap("21")
    stubs.quota_lists("sagemaker", {_quota_name(t): 2 * n for t, n in fleet.items()})
    stubs.quota_lists("apigateway", {API_TIMEOUT_QUOTA_NAME: 300_000}, {API_TIMEOUT_QUOTA_NAME: 29_000})
    stubs.weights(config.bucket_name("artifacts", ACCOUNT), {p: 3 for prefixes in PLAN.values() for p in prefixes})
    bundles = {"grounded_sam": "bundles/grounded_sam/abc/bundle-manifest.json"}  # prod: isolated DJL roles
    stubs.weights(config.bucket_name("artifacts", ACCOUNT), {bundles["grounded_sam"]: 1})
    rows = run_checks(config, stubs.clients, plan=lambda _c: PLAN, bundles=lambda _c: bundles)
    assert [r.status for r in rows] == ["ok"] * len(rows), rows
    assert {r.name for r in rows} >= {f"quota {t}" for t in fleet} | {"credentials", "cdk bootstrap", "weights"}
    assert "bundle grounded_sam" in {r.name for r in rows}
    assert not blockers(rows)


def test_endpoint_quota_below_the_fleet_blocks_and_below_the_update_headroom_warns(stubs, configs):
    config = configs["prod"]
    fleet = _fleet(config)
    short, tight, *rest = sorted(fleet)
    quotas = {_quota_name(short): fleet[short] - 1, _quota_name(tight): fleet[tight]}
    quotas.update({_quota_name(t): 2 * fleet[t] for t in rest})
    stubs.quota_lists("sagemaker", quotas)
    rows = {r.name: r for r in check_endpoint_quotas(config, stubs.clients)}
    failing = rows[f"quota {short}"]
    assert failing.status == "fail" and failing.blocker
    assert f"--desired-value {2 * fleet[short]}" in failing.fix and "--service-code sagemaker" in failing.fix
    warning = rows[f"quota {tight}"]
    assert warning.status == "warn" and not warning.blocker
    assert all(rows[f"quota {t}"].status == "ok" for t in rest)


def test_rolling_headroom_is_one_batch_not_a_second_fleet(stubs, configs):
    config = configs["dev"]  # rolling, one instance per role: one more instance per role during an update
    fleet = _fleet(config)
    stubs.quota_lists("sagemaker", {_quota_name(t): 2 * n for t, n in fleet.items()})
    assert {r.status for r in check_endpoint_quotas(config, stubs.clients)} == {"ok"}
    stubs.quota_lists("sagemaker", {_quota_name(t): 2 * n - 1 for t, n in fleet.items()})
    assert {r.status for r in check_endpoint_quotas(config, stubs.clients)} == {"warn"}


def test_the_default_29_s_integration_timeout_blocks_a_120_s_sync_timeout(stubs, configs):
    config = configs["dev"]
    assert config.api.sync_timeout_seconds == 120
    stubs.quota_lists("apigateway", {}, {API_TIMEOUT_QUOTA_NAME: 29_000})
    row = check_api_timeout(config, stubs.clients)
    assert row.status == "fail" and row.blocker
    assert "--service-code apigateway" in row.fix and "--desired-value 120000" in row.fix


def test_a_missing_bootstrap_names_the_bootstrap_command(stubs, configs):
    stubs.ssm.add_client_error("get_parameter", service_error_code="ParameterNotFound", http_status_code=400)
    row = check_bootstrap(configs["dev"], stubs.clients, ACCOUNT)
    assert row.status == "fail" and row.fix == f"npx cdk bootstrap aws://{ACCOUNT}/us-east-1"
    stubs.bootstrap("5")
    assert check_bootstrap(configs["dev"], stubs.clients, ACCOUNT).status == "fail"


def test_credentials_of_another_account_block(stubs, configs):
    stubs.identity("210987654321")
    row, account = check_identity(configs["prod"], stubs.clients)
    assert account == "210987654321" and row.status == "fail" and configs["prod"].account in row.fix


def test_a_named_secret_that_does_not_exist_blocks(stubs):
    data = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    data = copy.deepcopy(data)
    data["models"]["llm"]["weights"] = {"hub_id": "meta-llama/Llama-2-7b-chat-hf", "hub_token_secret": "vlp/hf-token"}
    config = parse_config(data, "dev.yaml")
    stubs.secrets.add_client_error(
        "describe_secret", service_error_code="ResourceNotFoundException", expected_params={"SecretId": "vlp/hf-token"}
    )
    (row,) = check_secrets(config, stubs.clients)
    assert row.status == "fail" and "create-secret --name vlp/hf-token" in row.fix


def test_weights_missing_under_a_prefix_or_no_bucket_block(stubs, configs):
    config = configs["dev"]
    bucket = config.bucket_name("artifacts", ACCOUNT)
    stubs.weights(
        bucket, {"weights/vlm/": 1, "weights/grounded_sam/grounding_dino/": 4, "weights/grounded_sam/sam/": 0}
    )
    row = check_weights(config, stubs.clients, ACCOUNT, plan=lambda _c: PLAN)
    assert row.status == "fail" and "grounded_sam: weights/grounded_sam/sam/" in row.detail and "vlm" not in row.detail
    assert row.fix == "make stage-weights ENV=dev (needs internet; HF_TOKEN for gated models)"
    stubs.s3.add_client_error("list_objects_v2", service_error_code="NoSuchBucket", http_status_code=404)
    row = check_weights(config, stubs.clients, ACCOUNT, plan=lambda _c: PLAN)
    assert row.status == "fail" and "Storage stack is not deployed" in row.detail


def test_the_weights_plan_covers_every_staged_role_with_its_component_folders(configs):
    config = configs["prod"]
    plan = weights_plan(config)
    staged = {role for role, m in config.models.enabled() if m.weights and m.weights.s3_prefix}
    assert set(plan) == staged
    assert plan["grounded_sam"] == ["weights/grounded_sam/grounding_dino/", "weights/grounded_sam/sam/"]
    assert plan["vlm"] == ["weights/vlm/"]


@pytest.mark.parametrize("command", ["preflight", "deploy", "destroy", "smoke"])
def test_without_credentials_each_command_says_so_in_one_line(command, monkeypatch, capsys, tmp_path):
    for name in list(__import__("os").environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    status = main([command, "--env", "dev", "--yes"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: no AWS credentials:") and err.count("\n") == 1 and "Traceback" not in err


def test_an_unknown_environment_is_a_usage_error(capsys):
    assert main(["preflight", "--env", "staging"]) == 2
    assert capsys.readouterr().err == "error: no config/staging.yaml (environments: dev, prod)\n"
