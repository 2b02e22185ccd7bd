"""The restyle role in the synthesized app: when enabled, an SDXL endpoint on g5 with its scaling, alarms, dashboard
row, cost row, the pipeline's ENDPOINT_RESTYLE and an execution role that reaches exactly its image and result keys;
when disabled, nothing at all."""

from __future__ import annotations

import copy
import json

import yaml
from aws_cdk.assertions import Template

from app import build_app
from stacks import constants as c
from stacks.config import CONFIG_DIR
from stacks.cost import cost_rows
from stacks.hosting_stack import endpoint_name

PREFIX = c.model_construct_id(c.MODEL_RESTYLE)


def _restyle(assembly, env: str, kind: str) -> dict[str, dict]:
    return {k: v for k, v in assembly.resources(f"{env}/{c.HOSTING_STACK_ID}", kind).items() if k.startswith(PREFIX)}


def _joined(value) -> str:
    """A resolved ARN as text (Fn::Join parts concatenated, other tokens as JSON)."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_joined(part) for part in parts)
    return value if isinstance(value, str) else json.dumps(value)


def test_restyle_endpoint_runs_the_djl_package_on_g5_with_sdxl(assembly, configs):
    for env, config in configs.items():
        model = config.models.restyle
        assert model.enabled
        ((_, endpoint),) = _restyle(assembly, env, "AWS::SageMaker::Endpoint").items()
        assert endpoint["Properties"]["EndpointName"] == endpoint_name(config, c.MODEL_RESTYLE)
        ((_, endpoint_config),) = _restyle(assembly, env, "AWS::SageMaker::EndpointConfig").items()
        variant = endpoint_config["Properties"]["ProductionVariants"][0]
        assert variant["InstanceType"] == "ml.g5.2xlarge"
        ((_, sm_model),) = _restyle(assembly, env, "AWS::SageMaker::Model").items()
        container = sm_model["Properties"]["PrimaryContainer"]
        assert "/djl-inference:" in container["Image"]
        environment = container["Environment"]
        assert environment["OPTION_MODEL_NAME"] == "stabilityai/stable-diffusion-xl-base-1.0"
        assert environment["OPTION_DTYPE"] == "fp16"
        assert _joined(environment["OPTION_MODEL_ID"]).endswith("/weights/restyle/")
        # it reads and writes the requests bucket itself: never network-isolated
        assert not sm_model["Properties"].get("EnableNetworkIsolation", False)
        assert c.output_endpoint_name(c.MODEL_RESTYLE) in assembly.templates[f"{env}/{c.HOSTING_STACK_ID}"]["Outputs"]


def test_restyle_scales_on_requests_in_flight_and_to_zero_in_dev(assembly, configs):
    for env, config in configs.items():
        model = config.models.restyle
        ((_, target),) = _restyle(assembly, env, "AWS::ApplicationAutoScaling::ScalableTarget").items()
        props = target["Properties"]
        assert (props["MinCapacity"], props["MaxCapacity"]) == (model.min_instances, model.max_instances)
        policies = _restyle(assembly, env, "AWS::ApplicationAutoScaling::ScalingPolicy")
        tracking = [p for p in policies.values() if p["Properties"]["PolicyType"] == "TargetTrackingScaling"]
        ((policy,),) = [tracking]
        spec = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        assert "ConcurrentRequests" in spec["PredefinedMetricSpecification"]["PredefinedMetricType"]
        assert spec["TargetValue"] == model.scaling.target
        components = _restyle(assembly, env, "AWS::SageMaker::InferenceComponent")
        if env == "dev":
            assert model.scaling.scale_to_zero and props["MinCapacity"] == 0 and len(components) == 1
        else:
            assert not model.scaling.scale_to_zero and props["MinCapacity"] >= 1 and not components


def test_restyle_role_reaches_only_its_image_and_result_keys(assembly, configs):
    for env in configs:
        policies = _restyle(assembly, env, "AWS::IAM::Policy")
        statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
        requests = f"vlp-{env}-requests-"

        def resources_for(action: str, statements: list[dict] = statements) -> list[str]:
            found = []
            for statement in statements:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if action in actions:
                    listed = statement["Resource"]
                    found += [_joined(r) for r in (listed if isinstance(listed, list) else [listed])]
            return found

        reads = [r for r in resources_for("s3:GetObject") if requests in r]
        writes = resources_for("s3:PutObject")
        assert len(reads) == 1 and reads[0].endswith("/inputs/*/image.jpg")
        assert len(writes) == 1 and requests in writes[0] and writes[0].endswith("/results/*/restyled.png")
        assert not resources_for("s3:DeleteObject") and not resources_for("s3:*")
        kms = [s for s in statements if "kms:GenerateDataKey" in json.dumps(s["Action"])]
        assert kms and all("kms:ViaService" in json.dumps(s.get("Condition")) for s in kms)


def test_restyle_alarms_and_dashboard_row(assembly, configs):
    for env in configs:
        monitoring = f"{env}/{c.MONITORING_STACK_ID}"
        alarms = [
            a["Properties"].get("AlarmName", "")
            for a in assembly.resources(monitoring, "AWS::CloudWatch::Alarm").values()
        ]
        name = f"vlp-{env}-restyle"
        ours = {a.removeprefix(name + "-") for a in alarms if a.startswith(name + "-")}
        assert {"errors5xx", "latency-p90", "gpu-utilization", "idle-gpu"} <= ours
        assert ("no-capacity" in ours) == (env == "dev")  # scale-to-zero components only
        rollback = {
            v["Properties"].get("AlarmName")
            for v in _restyle(assembly, env, "AWS::CloudWatch::Alarm").values()
            if "rollback" in str(v["Properties"].get("AlarmName"))
        }
        assert rollback == {f"{name}-rollback-5xx", f"{name}-rollback-latency"}
        ((_, dashboard),) = assembly.resources(monitoring, "AWS::CloudWatch::Dashboard").items()
        assert name in json.dumps(dashboard["Properties"]["DashboardBody"])


def test_restyle_latency_alarms_use_its_own_threshold(assembly, configs):
    """SDXL takes tens of seconds a request: its endpoint, rollback and step alarms read models.restyle.latency_p90_ms,
    the other roles keep alarms.latency_p90_ms."""
    for env, config in configs.items():
        own = config.models.restyle.latency_p90_ms
        assert own is not None and own > config.alarms.latency_p90_ms
        alarms = {
            a["Properties"].get("AlarmName"): a["Properties"]
            for stack in (c.MONITORING_STACK_ID, c.HOSTING_STACK_ID)
            for a in assembly.resources(f"{env}/{stack}", "AWS::CloudWatch::Alarm").values()
        }
        name = f"vlp-{env}"
        assert alarms[f"{name}-restyle-latency-p90"]["Threshold"] == own * 1000  # ModelLatency is in microseconds
        assert alarms[f"{name}-restyle-rollback-latency"]["Threshold"] == own * 1000
        assert alarms[f"{name}-step-restyle-model-latency"]["Threshold"] == max(
            own, config.alarms.step_model_latency_p90_ms
        )
        assert alarms[f"{name}-grounded-sam-latency-p90"]["Threshold"] == config.alarms.latency_p90_ms * 1000
        assert alarms[f"{name}-step-segment-model-latency"]["Threshold"] == config.alarms.step_model_latency_p90_ms


def test_pipeline_functions_get_the_restyle_endpoint(assembly, configs):
    for env, config in configs.items():
        functions = assembly.resources(f"{env}/{c.API_STACK_ID}", "AWS::Lambda::Function")
        names = {
            f["Properties"]["Environment"]["Variables"].get(c.endpoint_env_var(c.MODEL_RESTYLE))
            for f in functions.values()
            if "Environment" in f["Properties"]
        }
        assert endpoint_name(config, c.MODEL_RESTYLE) in names


def test_restyle_has_a_cost_row(configs):
    for config in configs.values():
        rows = {r[0]: r for r in cost_rows(config)}
        _, instance, low, high, each, at_min, at_max, _idle = rows[c.MODEL_RESTYLE]
        assert instance == "ml.g5.2xlarge" and each > 0
        assert (at_min, at_max) == (each * low, each * high)


def test_disabled_restyle_produces_nothing(tmp_path):
    for env in ("dev", "prod"):
        data = copy.deepcopy(yaml.safe_load((CONFIG_DIR / f"{env}.yaml").read_text()))
        data["models"][c.MODEL_RESTYLE] = {"enabled": False}
        (tmp_path / f"{env}.yaml").write_text(yaml.safe_dump(data))
    app = build_app(config_dir=tmp_path, outdir=str(tmp_path / "out"), nag=False)
    for env in ("dev", "prod"):
        stage = app.node.find_child(env)
        everything = "".join(
            json.dumps(Template.from_stack(stack).to_json())
            for stack in (stage.node.find_child(i) for i in (c.HOSTING_STACK_ID, c.MONITORING_STACK_ID))
        )
        assert PREFIX not in everything and f"vlp-{env}-restyle" not in everything
        assert "restyled.png" not in everything
        api = Template.from_stack(stage.node.find_child(c.API_STACK_ID)).to_json()
        variables = [
            r["Properties"]["Environment"]["Variables"]
            for r in api["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function" and "Environment" in r["Properties"]
        ]
        assert all(v.get(c.endpoint_env_var(c.MODEL_RESTYLE), "") == "" for v in variables)
        assert c.MODEL_RESTYLE not in {r[0] for r in cost_rows(_config(tmp_path, env))}


def _config(folder, env: str):
    from stacks.config import load_config

    return load_config(folder / f"{env}.yaml")
