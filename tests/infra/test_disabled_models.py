"""A disabled model produces nothing: no role, model, endpoint, scaling, alarm or output."""

from __future__ import annotations

import copy

import yaml
from aws_cdk.assertions import Template

from app import build_app
from stacks import constants as c
from stacks.config import CONFIG_DIR


def test_disabled_models_produce_no_resources(tmp_path):
    data = yaml.safe_load((CONFIG_DIR / "prod.yaml").read_text())
    data = copy.deepcopy(data)
    for role in c.MODEL_ROLES:
        if role != c.MODEL_LLM:
            data["models"][role] = {"enabled": False}
    (tmp_path / "prod.yaml").write_text(yaml.safe_dump(data))
    app = build_app(config_dir=tmp_path, outdir=str(tmp_path / "out"), nag=False)
    hosting = app.node.find_child("prod").node.find_child(c.HOSTING_STACK_ID)
    monitoring = app.node.find_child("prod").node.find_child(c.MONITORING_STACK_ID)
    template = Template.from_stack(hosting)
    template.resource_count_is("AWS::SageMaker::Endpoint", 1)
    template.resource_count_is("AWS::SageMaker::Model", 1)
    template.resource_count_is("AWS::IAM::Role", 1)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 1)
    assert set(template.to_json()["Outputs"]) == {c.output_endpoint_name(c.MODEL_LLM)}
    alarms = Template.from_stack(monitoring).find_resources("AWS::CloudWatch::Alarm")
    # the endpoint alarms (SageMaker namespaces) watch the one enabled endpoint only
    sagemaker = [
        str(a["Properties"])
        for a in alarms.values()
        if "sagemaker" in str(a["Properties"].get("Namespace", a["Properties"].get("Metrics"))).lower()
    ]
    assert sagemaker and all("vlp-prod-llm" in props for props in sagemaker)
    others = [role.replace("_", "-") for role in c.MODEL_ROLES if role != c.MODEL_LLM]
    assert not any(f"vlp-prod-{other}" in str(alarms) for other in others)
