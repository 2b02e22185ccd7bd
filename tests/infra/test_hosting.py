"""Endpoints from config: images, environment, instance settings, autoscaling per variant or component."""

from __future__ import annotations

import pytest

from stacks import constants as c
from stacks.hosting_stack import endpoint_name

DLC_ACCOUNT = "763104351884"


def _hosting(env):
    return f"{env}/{c.HOSTING_STACK_ID}"


def _model_of(assembly, env, role):
    construct = c.model_construct_id(role)
    models = assembly.resources(_hosting(env), "AWS::SageMaker::Model")
    return next(m for k, m in models.items() if k.startswith(construct) and "Model" in k)["Properties"]


def test_one_endpoint_per_enabled_model(assembly, configs):
    for env, config in configs.items():
        endpoints = assembly.resources(_hosting(env), "AWS::SageMaker::Endpoint")
        names = sorted(e["Properties"]["EndpointName"] for e in endpoints.values())
        assert names == sorted(endpoint_name(config, role) for role, _ in config.models.enabled())
        outputs = assembly.templates[_hosting(env)]["Outputs"]
        for role, _ in config.models.enabled():
            assert c.output_endpoint_name(role) in outputs


def test_prod_vlm_runs_tgi_on_four_gpus_from_s3_weights(assembly, configs):
    model = _model_of(assembly, "prod", c.MODEL_VLM)
    container = model["PrimaryContainer"]
    env = container["Environment"]
    assert env["SM_NUM_GPUS"] == "4"
    assert env["HF_MODEL_ID"] == "/opt/ml/model"
    assert int(env["MAX_INPUT_TOKENS"]) < int(env["MAX_TOTAL_TOKENS"])
    image = container["Image"]
    assert image.startswith(f"{DLC_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:")
    source = container["ModelDataSource"]["S3DataSource"]
    assert source["S3DataType"] == "S3Prefix" and source["CompressionType"] == "None"
    assert str(source["S3Uri"]).endswith("/weights/vlm/") or "weights/vlm/" in str(source["S3Uri"])


def test_dev_vlm_is_quantized_to_fit_one_gpu(assembly):
    env = _model_of(assembly, "dev", c.MODEL_VLM)["PrimaryContainer"]["Environment"]
    assert env["SM_NUM_GPUS"] == "1"
    assert env["HF_MODEL_QUANTIZE"] == "bitsandbytes-nf4"


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_djl_packages_are_assets_and_weights_come_from_s3(assembly, role):
    # dev: not isolated (prod's isolated roles run from their bundle: tests/infra/test_network_isolation.py)
    container = _model_of(assembly, "dev", role)["PrimaryContainer"]
    assert "/djl-inference:" in container["Image"]
    source = container["ModelDataSource"]["S3DataSource"]
    assert (source["S3DataType"], source["CompressionType"]) == ("S3Object", "Gzip")
    assert "s3://cdk-" in str(source["S3Uri"]) and str(source["S3Uri"]).endswith(".gz'}")  # dev: a Fn::Sub
    assert "weights/" + role + "/" in str(container["Environment"]["OPTION_MODEL_ID"])


def test_whisper_image_is_a_docker_asset(assembly):
    container = _model_of(assembly, "prod", c.MODEL_ASR)["PrimaryContainer"]
    assert "container-assets" in str(container["Image"])
    assert container["Environment"]["MODEL_DIR"] == "/opt/ml/model"
    assets = list(assembly.outdir.glob("asset.*/whisper/Dockerfile"))
    assert assets, "the Whisper build context (model_packages/, its own folder and two shared modules) must be staged"
    staged = {p.relative_to(assets[0].parents[1]).as_posix() for p in assets[0].parents[1].rglob("*.py")}
    assert {"shared/vlp_hub_token.py", "shared/vlp_errors.py", "whisper/whisper_server/server.py"} <= staged
    assert not any(path.split("/")[0] not in ("whisper", "shared") for path in staged)  # no other package


def test_g5_endpoint_configs_have_no_kms_key_and_startup_timeouts(assembly, configs):
    config = configs["prod"]
    for resource in assembly.resources(_hosting("prod"), "AWS::SageMaker::EndpointConfig").values():
        props = resource["Properties"]
        variant = props["ProductionVariants"][0]
        assert variant["InstanceType"].startswith("ml.g5.")
        assert "KmsKeyId" not in props  # SageMaker rejects it on NVMe-backed instances
        assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == config.models.vlm.health_check_timeout_seconds
        assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}


def test_prod_scales_each_variant_with_target_tracking(assembly, configs):
    config = configs["prod"]
    stack = _hosting("prod")
    targets = assembly.resources(stack, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = assembly.resources(stack, "AWS::ApplicationAutoScaling::ScalingPolicy")
    enabled = config.models.enabled()
    assert len(targets) == len(enabled)
    for role, model in enabled:
        resource_id = f"endpoint/{endpoint_name(config, role)}/variant/AllTraffic"
        target_id, target = next((k, t) for k, t in targets.items() if t["Properties"]["ResourceId"] == resource_id)
        assert target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (
            model.min_instances,
            model.max_instances,
        )
        mine = [p["Properties"] for p in policies.values() if p["Properties"]["ScalingTargetId"] == {"Ref": target_id}]
        assert len(mine) == 1 and mine[0]["PolicyType"] == "TargetTrackingScaling"
        tracking = mine[0]["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["TargetValue"] == model.scaling.target
        assert tracking["ScaleInCooldown"] == model.scaling.scale_in_cooldown_seconds
        expected_metric = {
            "invocations": "SageMakerVariantInvocationsPerInstance",
            "concurrency": "SageMakerVariantConcurrentRequestsPerModelHighResolution",
        }[model.scaling.metric]
        assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == expected_metric


def test_dev_scales_to_zero_with_inference_components(assembly, configs):
    config = configs["dev"]
    stack = _hosting("dev")
    components = assembly.resources(stack, "AWS::SageMaker::InferenceComponent")
    targets = assembly.resources(stack, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = assembly.resources(stack, "AWS::ApplicationAutoScaling::ScalingPolicy")
    enabled = config.models.enabled()
    assert len(components) == len(targets) == len(enabled)
    for resource in assembly.resources(stack, "AWS::SageMaker::EndpointConfig").values():
        variant = resource["Properties"]["ProductionVariants"][0]
        assert variant["ManagedInstanceScaling"]["Status"] == "ENABLED"
        assert variant["ManagedInstanceScaling"]["MinInstanceCount"] == 0
        assert "ModelName" not in variant
    for role, _ in enabled:
        resource_id = f"inference-component/{endpoint_name(config, role)}-ic"
        target_id, target = next((k, t) for k, t in targets.items() if t["Properties"]["ResourceId"] == resource_id)
        assert target["Properties"]["MinCapacity"] == 0
        assert target["Properties"]["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
        kinds = sorted(
            p["Properties"]["PolicyType"]
            for p in policies.values()
            if p["Properties"]["ScalingTargetId"] == {"Ref": target_id}
        )
        # target tracking, plus the step policy that brings the first copy back from zero
        assert kinds == ["StepScaling", "TargetTrackingScaling"]
    alarms = assembly.resources(stack, "AWS::CloudWatch::Alarm")
    assert sum(a["Properties"]["MetricName"] == "NoCapacityInvocationFailures" for a in alarms.values()) == len(enabled)
