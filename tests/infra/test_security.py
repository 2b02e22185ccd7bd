"""Least privilege: no wildcard actions, no *FullAccess policies, each model role scoped to its own data."""

from __future__ import annotations

from iam_actions import LOG_DELIVERY

from stacks import constants as c
from stacks.model_environment import network_isolated


def _statements(assembly):
    for name, resource in assembly.all_resources("AWS::IAM::Policy").items():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            yield name, statement
    for name, resource in assembly.all_resources("AWS::IAM::Role").items():
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement
    for name, resource in assembly.all_resources("AWS::IAM::ManagedPolicy").items():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            yield name, statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions(assembly):
    offenders = [
        (name, action)
        for name, statement in _statements(assembly)
        for action in _as_list(statement.get("Action", []))
        if "*" in action
    ]
    assert offenders == []


def test_no_full_access_managed_policies(assembly):
    for name, role in assembly.all_resources("AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert "FullAccess" not in str(arn), name


# Actions that support no resource-level permission (AWS service authorization reference), so `Resource: "*"` is
# the only form: ECR's token, X-Ray's trace upload, and the CloudWatch Logs log-delivery API that Step Functions
# logging uses.
RESOURCELESS_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    *LOG_DELIVERY,
}


def test_resource_wildcard_only_for_actions_without_resource_level_permissions(assembly):
    for name, statement in _statements(assembly):
        if "*" in _as_list(statement.get("Resource", [])):
            assert set(_as_list(statement["Action"])) <= RESOURCELESS_ACTIONS, (name, statement)


def test_model_roles_read_only_their_own_weights(assembly, configs):
    for env, config in configs.items():
        policies = assembly.resources(f"{env}/{c.HOSTING_STACK_ID}", "AWS::IAM::Policy")
        for role, model in config.models.enabled():
            construct = c.model_construct_id(role)
            policy = next(p for k, p in policies.items() if k.startswith(f"{construct}ExecutionRole"))
            reads = [
                str(s["Resource"])
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if "s3:GetObject" in _as_list(s["Action"])
                and ("weights" in str(s["Resource"]) or c.BUNDLES_PREFIX in str(s["Resource"]))
            ]
            # A network-isolated DJL role reads its bundle (which holds its weights), not weights/<role>/.
            isolated = role in c.DJL_ROLES and network_isolated(role, model)
            mine = f"{c.BUNDLES_PREFIX}{role}/" if isolated else model.weights.s3_prefix
            assert reads and all(mine in r for r in reads), (env, role, reads)
            others = [m.weights.s3_prefix for r, m in config.models.enabled() if r != role]
            assert not any(prefix in str(policy) for prefix in others), (env, role)
