"""The optional VPC (config `vpc`): with one configured, the model containers (CfnModel.VpcConfig) and the request
path's functions run in its subnets and security groups, with the network-interface permissions they need, and
cdk-nag stays clean. A separate in-process synth of a copy of prod.yaml with a `vpc` block (ids only: no lookups)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from app import build_app
from stacks.config import CONFIG_DIR

VPC = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "security_group_ids": ["sg-0123456789abcdef0"],
    "availability_zones": ["us-east-1a", "us-east-1b"],
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, dict]:
    config_dir = tmp_path_factory.mktemp("config")
    data = yaml.safe_load((CONFIG_DIR / "prod.yaml").read_text())
    data["vpc"] = VPC
    (config_dir / "prod.yaml").write_text(yaml.safe_dump(data))
    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app(config_dir=config_dir, outdir=str(outdir), nag=True).synth()  # a nag finding fails the synth
    found = {}
    for path in Path(outdir).glob("assembly-prod/*.template.json"):
        found[path.name.split(".")[0].removeprefix("prod")] = json.loads(path.read_text())
    return found


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _statements(template: dict, role_id: str) -> list[dict]:
    return [
        statement
        for policy in _resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _network_interface_grants(template: dict, properties: dict, subnets: str, role_id: str) -> list[dict]:
    """Checks that the resource runs in the configured subnets and security groups (`subnets`: its key for the subnet
    ids); returns its role's statements that allow creating network interfaces."""
    assert properties["VpcConfig"] == {subnets: VPC["subnet_ids"], "SecurityGroupIds": VPC["security_group_ids"]}
    return [
        s
        for s in _statements(template, role_id)
        if "ec2:CreateNetworkInterface" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]


def test_models_run_in_the_configured_subnets(templates):
    hosting = next(t for name, t in templates.items() if name.startswith("Hosting"))
    models = _resources(hosting, "AWS::SageMaker::Model")
    assert models
    for model in models.values():
        role_id = model["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
        assert _network_interface_grants(hosting, model["Properties"], "Subnets", role_id)


def test_request_functions_run_in_the_vpc_and_cdk_helpers_do_not(templates):
    api = next(t for name, t in templates.items() if name.startswith("Api"))
    functions = _resources(api, "AWS::Lambda::Function")
    ours = {
        k: f
        for k, f in functions.items()
        if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert ours
    for function in ours.values():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        eni = _network_interface_grants(api, function["Properties"], "SubnetIds", role_id)
        assert eni and eni[0]["Resource"] == "*"
    for key, function in functions.items():
        if key not in ours:
            assert "VpcConfig" not in function["Properties"]
