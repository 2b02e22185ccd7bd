"""The other `api:` settings, synthesized with cdk-nag on (any unacknowledged finding fails the synth) and linted:
Cognito and API-key auth, several CORS origins, a 29 s analyze timeout, and disabled models (empty endpoint
variable, no permission)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from aws_cdk.assertions import Template

from app import build_app
from stacks import constants as c
from stacks.config import CONFIG_DIR

VARIANTS = {
    # prod-like, Cognito, WAF, two browser origins, no ASR or LLM
    "cog": (
        "prod",
        {"auth": "cognito", "waf": True, "cors_origins": ["https://app.example.com", "https://admin.example.com"]},
        (c.MODEL_ASR, c.MODEL_LLM),
    ),
    # dev-like, API keys without a quota, any origin, the 29 s default integration timeout, no VLM
    "key": (
        "dev",
        {"auth": "api_key", "waf": False, "cors_origins": ["*"], "sync_timeout_seconds": 29},
        (c.MODEL_VLM,),
    ),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, dict]:
    config_dir = tmp_path_factory.mktemp("config")
    for name, (base, api, disabled) in VARIANTS.items():
        data = copy.deepcopy(yaml.safe_load((CONFIG_DIR / f"{base}.yaml").read_text()))
        data["name"] = name
        data["api"] = {**{k: v for k, v in data["api"].items() if k != "quota_requests_per_day"}, **api}
        for role in disabled:
            data["models"][role] = {"enabled": False}
        (config_dir / f"{name}.yaml").write_text(yaml.safe_dump(data))
    app = build_app(config_dir=config_dir, outdir=str(tmp_path_factory.mktemp("cdk.out")), nag=True)
    app.synth()  # raises on any cdk-nag finding
    return {
        name: Template.from_stack(app.node.find_child(name).node.find_child(c.API_STACK_ID)).to_json()
        for name in VARIANTS
    }


def _of_type(template: dict, kind: str) -> list[dict]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def _functions(template: dict) -> dict[str, tuple[str, dict]]:
    return {
        r["Properties"]["Handler"].split(".")[2]: (logical_id, r["Properties"])
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }


def test_variants_lint_clean(variants):
    from cfnlint.api import ManualArgs, lint

    problems = [
        f"{name}: {m.rule.id} {m.message}"
        for name, template in variants.items()
        for m in lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
        if m.rule.id[0] in "EW"
    ]
    assert problems == []


def test_cognito_auth(variants):
    template = variants["cog"]
    (pool,) = _of_type(template, "AWS::Cognito::UserPool")
    assert pool["MfaConfiguration"] == "ON" and pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    (authorizer,) = _of_type(template, "AWS::ApiGateway::Authorizer")
    assert authorizer["Type"] == "COGNITO_USER_POOLS"
    methods = [m for m in _of_type(template, "AWS::ApiGateway::Method") if m["HttpMethod"] != "OPTIONS"]
    assert len(methods) == 4
    assert all(m["AuthorizationType"] == "COGNITO_USER_POOLS" and "AuthorizerId" in m for m in methods)
    assert {c.OUTPUT_USER_POOL_ID, c.OUTPUT_USER_POOL_CLIENT_ID} <= set(template["Outputs"])
    assert _of_type(template, "AWS::WAFv2::WebACLAssociation")


def test_api_key_auth(variants):
    template = variants["key"]
    methods = [m for m in _of_type(template, "AWS::ApiGateway::Method") if m["HttpMethod"] != "OPTIONS"]
    assert all(m["AuthorizationType"] == "NONE" and m["ApiKeyRequired"] is True for m in methods)
    (api,) = _of_type(template, "AWS::ApiGateway::RestApi")
    assert api["ApiKeySourceType"] == "HEADER"
    (plan,) = _of_type(template, "AWS::ApiGateway::UsagePlan")
    assert "Quota" not in plan and plan["Throttle"]["RateLimit"] > 0
    assert len(_of_type(template, "AWS::ApiGateway::UsagePlanKey")) == 1
    assert c.OUTPUT_API_KEY_ID in template["Outputs"]


def test_several_origins_keep_gateway_errors_without_an_origin_header(variants):
    for response in _of_type(variants["cog"], "AWS::ApiGateway::GatewayResponse"):
        assert "gatewayresponse.header.Access-Control-Allow-Origin" not in response["ResponseParameters"]
    for response in _of_type(variants["key"], "AWS::ApiGateway::GatewayResponse"):
        assert response["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"


def test_short_sync_timeout_shrinks_the_express_machine_and_analyze(variants):
    template = variants["key"]
    _, analyze = _functions(template)[c.FUNCTION_ANALYZE]
    assert analyze["Timeout"] == 28
    (express,) = [
        m for m in _of_type(template, "AWS::StepFunctions::StateMachine") if m["StateMachineType"] == "EXPRESS"
    ]
    definition = "".join(p for p in express["DefinitionString"]["Fn::Join"][1] if isinstance(p, str))
    assert '"TimeoutSeconds":24' in definition.replace(" ", "")
    timeouts = [m["Integration"].get("TimeoutInMillis") for m in _of_type(template, "AWS::ApiGateway::Method")]
    assert 29_000 in timeouts


@pytest.mark.parametrize(
    ("variant", "function", "role"),
    [("cog", "transcribe", c.MODEL_ASR), ("cog", "plan", c.MODEL_LLM), ("key", "answer", c.MODEL_VLM)],
)
def test_disabled_model_empty_endpoint_and_no_permission(variants, variant, function, role):
    template = variants[variant]
    found = _functions(template)
    for name, (_, properties) in found.items():
        variables = properties["Environment"]["Variables"]
        if name in c.STEP_FUNCTIONS:
            assert variables[c.endpoint_env_var(role)] == "" and variables[c.inference_component_env_var(role)] == ""
    role_id = found[function][1]["Role"]["Fn::GetAtt"][0]
    policies = [p for p in _of_type(template, "AWS::IAM::Policy") if {"Ref": role_id} in p["Roles"]]
    assert "sagemaker:" not in json.dumps(policies)
    assert f"endpoint/vlp-{variant}-{role.replace('_', '-')}" not in json.dumps(template)
