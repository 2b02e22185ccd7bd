"""Network-isolated DJL roles (prod): each runs from its content-hashed S3 bundle (package, vendor/, weights/),
copied uncompressed into /opt/ml/model, with EnableNetworkIsolation and an execution role that reads that prefix
only. Roles that stay off isolation (dev) keep their model.tar.gz asset and option.model_id=s3://..."""

from __future__ import annotations

import json
import re

import pytest

from stacks import constants as c
from stacks.model_bundle import BUNDLE_MODEL_ID, role_bundle_prefix
from stacks.model_environment import network_isolated

HOSTING = f"prod/{c.HOSTING_STACK_ID}"


def _isolated_djl_roles(config) -> list[str]:
    return [role for role, model in config.models.enabled() if role in c.DJL_ROLES and network_isolated(role, model)]


def _model(assembly, stack: str, role: str) -> tuple[str, dict]:
    construct = c.model_construct_id(role)
    models = assembly.resources(stack, "AWS::SageMaker::Model")
    return next((k, m["Properties"]) for k, m in models.items() if k.startswith(construct))


def _role_statements(assembly, stack: str, model_props: dict) -> list[dict]:
    """The statements of the execution role the model runs as (its DefaultPolicy)."""
    role_id = model_props["ExecutionRoleArn"]["Fn::GetAtt"][0]
    policies = assembly.resources(stack, "AWS::IAM::Policy")
    return [
        statement
        for policy in policies.values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _artifacts(configs) -> str:
    config = configs["prod"]  # prod names its account: the bucket name is a literal
    return config.bucket_name("artifacts", config.account)


def _s3_statements(statements: list[dict]) -> list[dict]:
    def actions(statement: dict) -> list[str]:
        value = statement["Action"]
        return value if isinstance(value, list) else [value]

    return [s for s in statements if any(a.startswith("s3:") for a in actions(s))]


def test_prod_turns_isolation_on_for_every_djl_role_with_s3_weights(configs):
    """Except where config opts out explicitly (restyle: it reads and writes the requests bucket itself)."""
    config = configs["prod"]
    from_s3 = [
        role
        for role, model in config.models.enabled()
        if role in c.DJL_ROLES
        and model.weights is not None
        and model.weights.s3_prefix
        and model.network_isolation is not False
    ]
    assert from_s3, "prod has DJL roles with staged weights"
    assert _isolated_djl_roles(config) == from_s3


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_isolated_djl_model_reads_its_bundle_prefix_uncompressed(assembly, configs, role):
    if role not in _isolated_djl_roles(configs["prod"]):
        pytest.skip(f"{role} is not network-isolated in prod")
    _, model = _model(assembly, HOSTING, role)
    assert model["EnableNetworkIsolation"] is True
    container = model["PrimaryContainer"]
    assert "/djl-inference:" in container["Image"]
    assert "ModelDataUrl" not in container
    source = container["ModelDataSource"]["S3DataSource"]
    assert (source["S3DataType"], source["CompressionType"]) == ("S3Prefix", "None")
    prefix = role_bundle_prefix(role, getattr(configs["prod"].models, role).container_version)
    assert prefix.startswith(f"{c.BUNDLES_PREFIX}{role}/") and prefix.endswith("/")
    assert source["S3Uri"] == f"s3://{_artifacts(configs)}/{prefix}"
    # option.model_id is the bundle's weights folder as SageMaker lays it out: a local path, nothing to download.
    assert container["Environment"][c.djl_option_env_var("model_id")] == BUNDLE_MODEL_ID == "/opt/ml/model/weights"
    assert not any(str(value).startswith("s3://") for value in container["Environment"].values())


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_isolated_djl_role_reads_only_its_bundle(assembly, configs, role):
    if role not in _isolated_djl_roles(configs["prod"]):
        pytest.skip(f"{role} is not network-isolated in prod")
    _, model = _model(assembly, HOSTING, role)
    statements = _s3_statements(_role_statements(assembly, HOSTING, model))
    # The prefix the Model reads (its hash is checked against the package in the test above).
    prefix = model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"].split("/", 3)[3]
    assert re.fullmatch(rf"{c.BUNDLES_PREFIX}{role}/[0-9a-f]{{20}}/", prefix), prefix
    by_action = {json.dumps(s["Action"]): s for s in statements}
    assert set(by_action) == {'"s3:GetObject"', '"s3:ListBucket"'}, statements
    assert by_action['"s3:GetObject"']["Resource"] == f"arn:aws:s3:::{_artifacts(configs)}/{prefix}*"
    assert by_action['"s3:ListBucket"']["Resource"] == f"arn:aws:s3:::{_artifacts(configs)}"
    listing = by_action['"s3:ListBucket"']
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    # Not the staged weights (the bundle holds its own copy), not the CDK asset bucket.
    assert f"weights/{role}/" not in json.dumps(statements) and "cdk-" not in json.dumps(statements)


def test_isolated_djl_roles_synthesize_no_package_asset(assembly, configs):
    roles = _isolated_djl_roles(configs["prod"])
    resources = assembly.templates[HOSTING]["Resources"]
    for role in roles:
        assert not any(k.startswith(f"{c.model_construct_id(role)}Package") for k in resources)
    models = assembly.resources(HOSTING, "AWS::SageMaker::Model").values()
    assert "cdk-" not in json.dumps(
        [
            m["Properties"]["PrimaryContainer"].get("ModelDataSource")
            for m in models
            if m["Properties"].get("EnableNetworkIsolation")
        ]
    )


def test_dev_djl_roles_keep_their_asset_and_the_network(assembly, configs):
    """dev iterates on package code: each change would need a staged bundle, so it stays on the asset."""
    config = configs["dev"]
    stack = f"dev/{c.HOSTING_STACK_ID}"
    for role, model in config.models.enabled():
        if role not in c.DJL_ROLES:
            continue
        assert not network_isolated(role, model)
        _, props = _model(assembly, stack, role)
        assert not props.get("EnableNetworkIsolation")
        assert props["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["CompressionType"] == "Gzip"
        assert c.BUNDLES_PREFIX not in json.dumps(_s3_statements(_role_statements(assembly, stack, props)))
