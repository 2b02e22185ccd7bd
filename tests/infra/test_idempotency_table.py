"""The idempotency table of POST /v1/jobs: in the Storage stack, on demand, encrypted with the data key, PITR, TTL,
removal from config; only the jobs function reaches it, with four item actions, and knows its name."""

from __future__ import annotations

import pytest

from stacks import constants as c


def _table(assembly, env):
    tables = assembly.resources(f"{env}/{c.STORAGE_STACK_ID}", "AWS::DynamoDB::Table")
    assert len(tables) == 1
    ((logical_id, table),) = tables.items()
    return logical_id, table


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_table_is_on_demand_encrypted_with_the_data_key_with_pitr_and_ttl(assembly, env, configs):
    _, table = _table(assembly, env)
    props = table["Properties"]
    assert props["TableName"] == c.idempotency_table_name(configs[env].prefix) == f"vlp-{env}-idempotency"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    (key_id,) = assembly.resources(f"{env}/{c.STORAGE_STACK_ID}", "AWS::KMS::Key")
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    outputs = assembly.templates[f"{env}/{c.STORAGE_STACK_ID}"]["Outputs"]
    assert outputs[c.OUTPUT_IDEMPOTENCY_TABLE]["Value"] == {"Ref": _table(assembly, env)[0]}


def test_removal_policy_follows_config(assembly, configs):
    for env, config in configs.items():
        _, table = _table(assembly, env)
        retain = config.removal_policy == "retain"
        assert table["DeletionPolicy"] == ("Retain" if retain else "Delete"), env
        assert table["Properties"].get("DeletionProtectionEnabled", False) is retain, env


def _function_environments(assembly, env) -> dict[str, dict]:
    template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
    return {
        r["Properties"]["Handler"].split(".")[2]: r["Properties"]["Environment"]["Variables"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler", "").startswith("vlp.handlers.")
    }


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_the_jobs_function_knows_the_table(assembly, env, configs):
    environments = _function_environments(assembly, env)
    assert environments[c.FUNCTION_JOBS][c.ENV_IDEMPOTENCY_TABLE] == c.idempotency_table_name(configs[env].prefix)
    others = [name for name, variables in environments.items() if c.ENV_IDEMPOTENCY_TABLE in variables]
    assert others == [c.FUNCTION_JOBS]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_the_jobs_role_may_use_the_table_with_four_item_actions(assembly, env):
    template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
    functions = {
        r["Properties"]["Handler"].split(".")[2]: r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler", "").startswith("vlp.handlers.")
    }
    grants: dict[str, list[dict]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("dynamodb:") for a in actions) or ("dynamodb." in str(statement.get("Condition", {}))):
                for role in resource["Properties"]["Roles"]:
                    grants.setdefault(role["Ref"], []).append(statement)
    assert set(grants) == {functions[c.FUNCTION_JOBS]}
    (table_statement,) = [s for s in grants[functions[c.FUNCTION_JOBS]] if "dynamodb:GetItem" in s["Action"]]
    assert sorted(table_statement["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    resource = table_statement["Resource"]
    rendered = str(resource)
    assert "Condition" not in table_statement
    assert f":table/vlp-{env}-idempotency" in rendered and "*" not in rendered and "index" not in rendered
    (key_statement,) = [s for s in grants[functions[c.FUNCTION_JOBS]] if s is not table_statement]
    assert key_statement["Condition"] == {"StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}}
    assert all(a.startswith("kms:") and "*" not in a for a in key_statement["Action"])
    assert c.ENCRYPTION_KEY_ID in str(key_statement["Resource"])
