"""Config of safe endpoint updates and isolated containers: strategies per environment and per role, what
inference components allow, update headroom, network isolation, the optional VPC."""

from __future__ import annotations

import copy

import pytest
import yaml

from stacks.config import CONFIG_DIR, ConfigError, DeploymentConfig, parse_config
from stacks.model_environment import network_isolated


def _data(env: str) -> dict:
    return copy.deepcopy(yaml.safe_load((CONFIG_DIR / f"{env}.yaml").read_text()))


def test_dev_updates_by_rolling_and_prod_by_canary():
    dev, prod = parse_config(_data("dev"), "dev.yaml"), parse_config(_data("prod"), "prod.yaml")
    assert {dev.deployment_strategy(m) for _r, m in dev.models.enabled()} == {"rolling"}
    assert {prod.deployment_strategy(m) for _r, m in prod.models.enabled()} == {"canary"}


def test_a_role_overrides_the_environment_strategy():
    data = _data("prod")
    data["models"]["asr"]["deployment"] = "linear"
    config = parse_config(data, "prod.yaml")
    assert config.deployment_strategy(config.models.asr) == "linear"
    assert config.deployment_strategy(config.models.vlm) == "canary"


@pytest.mark.parametrize("where", ["environment", "role"])
def test_blue_green_is_refused_for_scale_to_zero_inference_components(where):
    data = _data("dev")
    if where == "environment":
        data["deployment"] = {"strategy": "canary"}
    else:
        data["models"]["vlm"]["deployment"] = "linear"
    with pytest.raises(ConfigError, match=r"inference components .* do not support"):
        parse_config(data, "dev.yaml")


def test_unknown_strategy_and_out_of_range_batch_are_refused():
    data = _data("prod")
    data["deployment"] = {"strategy": "big_bang"}
    with pytest.raises(ConfigError, match=r"^prod.yaml: deployment.strategy: "):
        parse_config(data, "prod.yaml")
    data["deployment"] = {"strategy": "rolling", "rolling_batch_percent": 80}
    with pytest.raises(ConfigError, match=r"deployment.rolling_batch_percent"):
        parse_config(data, "prod.yaml")


@pytest.mark.parametrize(
    ("strategy", "max_instances", "expected"),
    [
        ("canary", 4, 4),
        ("linear", 2, 2),
        ("all_at_once", 1, 1),
        ("rolling", 4, 1),
        ("rolling", 9, 3),
        ("rolling", 1, 1),
    ],
)
def test_update_headroom(strategy, max_instances, expected):
    assert DeploymentConfig(rolling_batch_percent=25).headroom(strategy, max_instances) == expected


def test_network_isolation_by_default_only_where_sagemaker_copies_the_weights():
    config = parse_config(_data("prod"), "prod.yaml")
    assert network_isolated("vlm", config.models.vlm) and network_isolated("asr", config.models.asr)
    assert network_isolated("grounded_sam", config.models.grounded_sam)  # prod: from its staged bundle
    data = _data("prod")
    del data["models"]["grounded_sam"]["network_isolation"]
    assert not network_isolated("grounded_sam", parse_config(data, "prod.yaml").models.grounded_sam)  # opt-in
    data = _data("prod")
    data["models"]["llm"]["weights"] = {"hub_id": "meta-llama/Llama-2-7b-chat-hf"}
    assert not network_isolated("llm", parse_config(data, "prod.yaml").models.llm)
    data["models"]["llm"]["network_isolation"] = True
    with pytest.raises(ConfigError, match=r"network_isolation: true needs weights\.s3_prefix"):
        parse_config(data, "prod.yaml")
    data = _data("prod")
    data["models"]["clip_tagging"]["weights"] = {"hub_id": "openai/clip-vit-large-patch14"}
    with pytest.raises(ConfigError, match=r"network_isolation: true needs weights\.s3_prefix"):
        parse_config(data, "prod.yaml")


def test_vpc_needs_one_zone_per_subnet_and_well_formed_ids():
    data = _data("prod")
    data["vpc"] = {
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        "security_group_ids": ["sg-0123456789abcdef0"],
        "availability_zones": ["us-east-1a", "us-east-1b"],
    }
    assert parse_config(data, "prod.yaml").vpc.subnet_ids[1] == "subnet-0123456789abcdef1"
    data["vpc"]["availability_zones"] = ["us-east-1a"]
    with pytest.raises(ConfigError, match="one zone per entry of subnet_ids"):
        parse_config(data, "prod.yaml")
    data["vpc"]["availability_zones"] = ["us-east-1a", "us-east-1b"]
    data["vpc"]["security_group_ids"] = ["default"]
    with pytest.raises(ConfigError, match=r"vpc.security_group_ids.0"):
        parse_config(data, "prod.yaml")
