"""Issue 12 (security): no secret value in any template or model environment, the hub token read by the container
through its own role, `api_key` without WAF warned about in retained environments, both state machines under a
customer-managed key that only their callers may use, WAF logs retained and encrypted, and the confused-deputy
conditions on every key policy statement for a service principal."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from aws_cdk.assertions import Annotations, Match, Template

from app import build_app
from stacks import constants as c
from stacks.api_auth import API_KEY_WITHOUT_WAF_ID
from stacks.config import CONFIG_DIR
from stacks.model_secrets import SECRET_SUFFIX

# What a secret value or a reference CloudFormation would resolve into a plaintext property looks like.
SECRET_PATTERNS = {
    "hub token": re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
    "Secrets Manager dynamic reference": re.compile(r"\{\{resolve:secretsmanager", re.I),
    "SecureString dynamic reference": re.compile(r"\{\{resolve:ssm-secure", re.I),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
TOKEN_VARIABLES = {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN"}
HUB_SECRET = "vlp/hf-token"
CLIP_SECRET = "vlp/clip-token"


def secret_findings(templates: dict[str, dict]) -> list[tuple[str, str]]:
    findings = []
    for stack, template in templates.items():
        text = json.dumps(template)
        findings += [(stack, what) for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
        for name, resource in template["Resources"].items():
            if resource["Type"] != "AWS::SageMaker::Model":
                continue
            properties = resource["Properties"]
            for container in [properties.get("PrimaryContainer", {}), *properties.get("Containers", [])]:
                env = container.get("Environment", {})
                findings += [(f"{stack}:{name}", f"variable {k}") for k in env if k in TOKEN_VARIABLES]
                findings += [
                    (f"{stack}:{name}", f"{k} resolves a reference") for k, v in env.items() if "{{resolve:" in str(v)
                ]
    return findings


def test_the_scan_finds_what_it_looks_for():
    leaky = {
        "Resources": {
            "M": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {"PrimaryContainer": {"Environment": {"HF_TOKEN": "{{resolve:secretsmanager:x}}"}}},
            },
            "F": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"K": "hf_" + "x1" * 17}}},
        }
    }
    found = {what for _, what in secret_findings({"s": leaky})}
    assert {
        "hub token",
        "Secrets Manager dynamic reference",
        "variable HF_TOKEN",
        "HF_TOKEN resolves a reference",
    } <= found


def test_no_template_holds_a_secret(assembly):
    assert secret_findings(assembly.templates) == []


# ---- a synth of variants: hub weights with a token secret; api_key in a retained environment without WAF ----


def _config(base: str, name: str) -> dict:
    data = copy.deepcopy(yaml.safe_load((CONFIG_DIR / f"{base}.yaml").read_text()))
    data["name"] = name
    return data


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict:
    config_dir = tmp_path_factory.mktemp("config")
    gated = _config("dev", "gated")
    gated["models"][c.MODEL_ASR]["weights"] = {"hub_id": "openai/whisper-large-v3", "hub_token_secret": HUB_SECRET}
    gated["models"][c.MODEL_CLIP_TAGGING]["weights"] = {
        "hub_id": "openai/clip-vit-large-patch14",
        "hub_token_secret": CLIP_SECRET,
    }
    keyprod = _config("prod", "keyprod")
    keyprod["api"] = {**keyprod["api"], "auth": "api_key", "waf": False}
    for data in (gated, keyprod):
        (config_dir / f"{data['name']}.yaml").write_text(yaml.safe_dump(data))
    app = build_app(config_dir=config_dir, outdir=str(tmp_path_factory.mktemp("cdk.out")), nag=True)
    assembly = app.synth()  # raises on any cdk-nag finding
    stacks = {
        f"{env}/{stack.node.id}": stack
        for env in ("gated", "keyprod")
        for stack in app.node.find_child(env).node.children
        if hasattr(stack, "template_options")
    }
    return {
        "templates": {name: Template.from_stack(stack).to_json() for name, stack in stacks.items()},
        "stacks": stacks,
        "assembly": assembly,
    }


def _roles_reading_secrets(template: dict) -> dict[str, list]:
    reads: dict[str, list] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if "secretsmanager:" in json.dumps(statement["Action"]):
                reads.setdefault(name, []).append((statement["Action"], statement["Resource"]))
    return reads


def test_hub_weights_name_their_secret_and_only_that_role_may_read_it(variants):
    hosting = variants["templates"][f"gated/{c.HOSTING_STACK_ID}"]
    assert secret_findings(variants["templates"]) == []
    asr, clip = c.model_construct_id(c.MODEL_ASR), c.model_construct_id(c.MODEL_CLIP_TAGGING)
    named = {
        name: r["Properties"]["PrimaryContainer"]["Environment"].get(c.ENV_HF_TOKEN_SECRET_ID)
        for name, r in hosting["Resources"].items()
        if r["Type"] == "AWS::SageMaker::Model"
    }
    assert {k: v for k, v in named.items() if v} == {
        next(k for k in named if k.startswith(asr)): HUB_SECRET,
        next(k for k in named if k.startswith(clip)): CLIP_SECRET,
    }
    reads = _roles_reading_secrets(hosting)
    by_role = {prefix: v for k, v in reads.items() for prefix in (asr, clip) if k.startswith(prefix)}
    assert len(by_role) == len(reads) == 2, reads
    for role, secret in ((asr, HUB_SECRET), (clip, CLIP_SECRET)):
        ((action, resource),) = by_role[role]
        # arn:aws:secretsmanager:us-east-1:<the account, a token here>:secret:<name>-??????
        rendered = json.dumps(resource)
        assert action == "secretsmanager:GetSecretValue", role
        assert "arn:aws:secretsmanager:us-east-1:" in rendered and rendered.endswith(
            f':secret:{secret}{SECRET_SUFFIX}"]]}}'
        ), (role, rendered)


def test_tgi_roles_refuse_a_hub_token_at_synth(tmp_path):
    data = _config("dev", "tgigated")
    data["models"][c.MODEL_LLM]["weights"] = {"hub_id": "meta-llama/Llama-2-7b-chat-hf", "hub_token_secret": HUB_SECRET}
    (tmp_path / "tgigated.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="hub_token_secret is not supported for TGI roles"):
        build_app(config_dir=tmp_path, outdir=str(tmp_path / "cdk.out"), nag=False)


def test_api_key_in_a_retained_environment_without_waf_is_warned_about(variants, assembly):
    api = variants["stacks"][f"keyprod/{c.API_STACK_ID}"]
    warnings = Annotations.from_stack(api).find_warning("*", Match.string_like_regexp("does not authenticate"))
    assert len(warnings) == 1 and API_KEY_WITHOUT_WAF_ID in warnings[0].entry.data
    # the real environments (prod: iam and WAF; dev: destroy) carry no such warning
    for stack, metadata in assembly.metadata.items():
        assert API_KEY_WITHOUT_WAF_ID not in json.dumps(metadata), stack


# ---- execution data: the state machines' key ----


def _pipeline_key(template: dict) -> tuple[str, dict]:
    keys = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key"}
    (name,) = [k for k in keys if k.startswith(c.PIPELINE_ID + c.PIPELINE_KEY_ID)]
    return name, keys[name]


def test_both_state_machines_use_the_pipeline_key(assembly, configs):
    for env in configs:
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        key_name, key = _pipeline_key(template)
        assert key["Properties"]["EnableKeyRotation"] is True
        machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
        assert len(machines) == 2
        for machine in machines:
            encryption = machine["Properties"]["EncryptionConfiguration"]
            assert encryption["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
            assert encryption["KmsKeyId"] == {"Fn::GetAtt": [key_name, "Arn"]}


def test_only_the_machines_and_their_callers_may_use_the_pipeline_key(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        key_name, _ = _pipeline_key(template)
        users: dict[str, set] = {}
        for name, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Resource"] != {"Fn::GetAtt": [key_name, "Arn"]}:
                    continue
                context = statement["Condition"]["StringEquals"].get("kms:EncryptionContext:aws:states:stateMachineArn")
                logs = statement["Condition"]["StringEquals"].get("kms:EncryptionContext:SourceArn")
                assert context or logs, (name, statement)
                # the machine's ARN: a literal, or a join with the account token (an environment without account)
                machine = json.dumps(context).split(":stateMachine:")[-1].split('"')[0] if context else "logs"
                users.setdefault(name.split("RoleDefaultPolicy")[0], set()).add(machine)
        express, standard = f"{config.prefix}-pipeline", f"{config.prefix}-jobs"
        assert users == {
            "FunctionsAnalyzeFunction": {express},
            "FunctionsJobsFunction": {standard},
            "PipelineExpressStateMachine": {express, "logs"},
            "PipelineStandardStateMachine": {standard, "logs"},
        }, (env, users)


CONFUSED_DEPUTY_KEYS = ("aws:SourceAccount", "aws:SourceArn")


def _scoped_to_this_account(condition: dict) -> bool:
    values = {k: v for operator in condition.values() for k, v in operator.items()}
    if any(k in values for k in CONFUSED_DEPUTY_KEYS):
        return True
    # CloudWatch Logs' documented form: the encryption context names this account's log groups
    return any(
        k.startswith("kms:EncryptionContext:") and re.search(r':\d{12}:|"AWS::AccountId"', json.dumps(v))
        for k, v in values.items()
    )


def test_key_policies_scope_every_service_principal(assembly):
    checked = 0
    for stack, template in assembly.templates.items():
        for name, resource in template["Resources"].items():
            if resource["Type"] != "AWS::KMS::Key":
                continue
            for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
                if "Service" not in statement.get("Principal", {}):
                    continue
                checked += 1
                assert _scoped_to_this_account(statement.get("Condition", {})), (stack, name, statement)
    assert checked >= 3  # logs on the data key, log delivery on the pipeline key, CloudWatch on the alarm key


def test_waf_logs_to_a_retained_encrypted_group(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        logging = [r for r in template["Resources"].values() if r["Type"] == "AWS::WAFv2::LoggingConfiguration"]
        if not config.api.waf:
            assert logging == []
            continue
        (configuration,) = logging
        (destination,) = configuration["Properties"]["LogDestinationConfigs"]
        name = destination.split(":log-group:")[1]
        assert name == f"aws-waf-logs-{config.prefix}-api"
        (group,) = [
            r
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Logs::LogGroup" and r["Properties"].get("LogGroupName") == name
        ]
        assert group["Properties"]["KmsKeyId"] and group["Properties"]["RetentionInDays"] == config.logs.retention_days
        assert group["DeletionPolicy"] == ("Retain" if config.removal_policy == "retain" else "Delete")
        redacted = {f["SingleHeader"]["Name"] for f in configuration["Properties"]["RedactedFields"]}
        assert {"authorization", "x-api-key"} <= redacted
