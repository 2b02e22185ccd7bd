"""Safe endpoint updates and isolated model containers (issue 11, items 4 and 8): every endpoint, or its inference
component, updates by its configured strategy and rolls back on its own 5XX/latency alarms; models whose weights
SageMaker copies from S3 are network-isolated; the optional VPC reaches the model containers."""

from __future__ import annotations

import pytest

from stacks import constants as c
from stacks.hosting_stack import endpoint_name
from stacks.model_endpoint import ROLLBACK_ALARM_SUFFIXES
from stacks.model_environment import network_isolated


def _hosting(env: str) -> str:
    return f"{env}/{c.HOSTING_STACK_ID}"


def _by_name(resources: dict[str, dict], key: str) -> dict[str, dict]:
    return {r["Properties"][key]: r for r in resources.values() if key in r["Properties"]}


def _rollback_alarm_names(alarms_by_name: dict[str, dict], name: str) -> list[str]:
    names = [f"{name}-{suffix}" for suffix in ROLLBACK_ALARM_SUFFIXES]
    assert all(n in alarms_by_name for n in names), f"rollback alarms of {name} missing"
    return names


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_endpoint_updates_by_its_strategy_and_rolls_back_on_its_alarms(assembly, configs, env):
    config = configs[env]
    stack = _hosting(env)
    endpoints = _by_name(assembly.resources(stack, "AWS::SageMaker::Endpoint"), "EndpointName")
    components = _by_name(assembly.resources(stack, "AWS::SageMaker::InferenceComponent"), "InferenceComponentName")
    alarm_resources = assembly.resources(stack, "AWS::CloudWatch::Alarm")
    alarms = _by_name(alarm_resources, "AlarmName")
    settings = config.deployment
    for role, model in config.models.enabled():
        name = endpoint_name(config, role)
        expected_alarms = _rollback_alarm_names(alarms, name)
        strategy = config.deployment_strategy(model)
        if model.scaling.scale_to_zero:
            assert strategy == "rolling"
            assert "DeploymentConfig" not in endpoints[name]["Properties"]
            deployment = components[f"{name}-ic"]["Properties"]["DeploymentConfig"]
            dimensions = {"InferenceComponentName": f"{name}-ic"}
        else:
            deployment = endpoints[name]["Properties"]["DeploymentConfig"]
            dimensions = {"EndpointName": name, "VariantName": "AllTraffic"}
        # a Ref to the alarm in the same stack: CloudFormation creates the alarms before the endpoint
        refs = [a["AlarmName"]["Ref"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]]
        rollback = [alarm_resources[ref]["Properties"]["AlarmName"] for ref in refs]
        assert rollback == expected_alarms
        for alarm_name in expected_alarms:
            props = alarms[alarm_name]["Properties"]
            assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == dimensions
            assert props["Namespace"] == "AWS/SageMaker"
        metrics = {alarms[n]["Properties"]["MetricName"]: alarms[n]["Properties"] for n in expected_alarms}
        assert metrics["Invocation5XXErrors"]["Threshold"] == config.alarms.error_5xx_threshold
        assert metrics["ModelLatency"]["Threshold"] == model.p90_latency_ms(config.alarms) * 1000
        if strategy == "rolling":
            policy = deployment["RollingUpdatePolicy"]
            assert policy["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": settings.rolling_batch_percent}
            assert policy["WaitIntervalInSeconds"] == settings.wait_minutes * 60
            assert "BlueGreenUpdatePolicy" not in deployment
        else:
            policy = deployment["BlueGreenUpdatePolicy"]
            routing = policy["TrafficRoutingConfiguration"]
            assert routing["Type"] == strategy.upper()
            if strategy == "canary":
                assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": settings.canary_percent}
            assert policy["TerminationWaitInSeconds"] == settings.termination_wait_minutes * 60
            assert "RollingUpdatePolicy" not in deployment


def test_environment_defaults_dev_rolling_prod_canary(configs):
    assert configs["dev"].deployment.strategy == "rolling"
    assert configs["prod"].deployment.strategy == "canary"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_models_with_weights_copied_from_s3_run_network_isolated(assembly, configs, env):
    config = configs[env]
    models = assembly.resources(_hosting(env), "AWS::SageMaker::Model")
    isolated = sum(bool(m["Properties"].get("EnableNetworkIsolation")) for m in models.values())
    expected = [role for role, model in config.models.enabled() if network_isolated(role, model)]
    # TGI (vlm, llm) and Whisper (asr) read their weights through ModelDataSource in both environments.
    assert {c.MODEL_VLM, c.MODEL_LLM, c.MODEL_ASR} <= set(expected)
    # DJL roles only where config opts in (prod; they run from their staged bundle, test_network_isolation.py)
    assert set(expected) & set(c.DJL_ROLES) == {
        r for r, m in config.models.enabled() if r in c.DJL_ROLES and m.network_isolation
    }
    assert isolated == len(expected)
    for model in models.values():
        if model["Properties"].get("EnableNetworkIsolation"):
            source = model["Properties"]["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
            assert source["S3DataType"] == "S3Prefix"
