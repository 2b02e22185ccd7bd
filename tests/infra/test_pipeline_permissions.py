"""Least privilege of the request path, exactly docs/pipeline.md "Permissions": each function's role touches only
its prefixes of the requests bucket and invokes only its model's endpoint; the state machines only invoke the
eleven step functions."""

from __future__ import annotations

from cfn_values import ACCOUNT, render
from iam_actions import LOG_DELIVERY
from vlp import steps

from stacks import constants as c

R = "<requests>"
KEY = "<key>"
XRAY = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}


def _get(prefix):
    return ("s3:GetObject", f"{R}/{prefix}*")


def _put(prefix):
    return ("s3:PutObject", f"{R}/{prefix}*")


# jobs keep user data in S3, not in the Standard machine's history (vlp.pipeline.stored): every step reads and writes
# its execution's step documents; the jobs function writes the request document, assemble the result document
# (a step that reads inputs/* already reads them)
STEP_DOCS = {_get("inputs/*/*/steps/"), _put("inputs/*/*/steps/")}
STEP_DOCS_WRITE = {_put("inputs/*/*/steps/")}
REQUEST_DOC = ("s3:PutObject", f"{R}/inputs/*/*/request.json")
RESULT_DOC = ("s3:PutObject", f"{R}/results/*/*/result.json")


DECRYPT, GENERATE = ("kms:Decrypt", KEY), ("kms:GenerateDataKey", KEY)
# the state machines' customer-managed key (stacks/pipeline_encryption.py): their callers encrypt what they send
# and decrypt what they read back, each for its own machine only (test_secrets_and_encryption.py)
PIPELINE_KEY = "<pipeline key>"
PIPELINE_KEY_USE = {("kms:Decrypt", PIPELINE_KEY), ("kms:GenerateDataKey", PIPELINE_KEY)}
TABLE = "<idempotency table>"
IDEMPOTENCY = {
    ("dynamodb:GetItem", TABLE),
    ("dynamodb:PutItem", TABLE),
    ("dynamodb:UpdateItem", TABLE),
    ("dynamodb:DeleteItem", TABLE),
    DECRYPT,
    GENERATE,
    ("kms:Encrypt", KEY),
    ("kms:DescribeKey", KEY),
}
UP, IN, OUT = c.UPLOADS_PREFIX, c.INPUTS_PREFIX, c.RESULTS_PREFIX
# docs/pipeline.md "Permissions", row by row (the endpoint of `role` is added per environment).
DOCUMENTED: dict[str, tuple[set, str | None]] = {
    "uploads": ({_put(UP), GENERATE}, None),
    "analyze": ({_get(OUT), DECRYPT, ("states:StartSyncExecution", "<express>")} | PIPELINE_KEY_USE, None),
    "jobs": (
        {
            _get(OUT),
            REQUEST_DOC,
            DECRYPT,
            GENERATE,
            ("states:StartExecution", "<standard>"),
            ("states:DescribeExecution", "<standard executions>"),
        }
        | IDEMPOTENCY
        | PIPELINE_KEY_USE,
        None,
    ),
    "validate": ({_get(UP), _get(IN), _put(IN), ("s3:ListBucket", R), DECRYPT, GENERATE}, None),
    "transcribe": (
        {_get(IN), DECRYPT, GENERATE} | STEP_DOCS_WRITE,
        c.MODEL_ASR,
    ),  # the validated copy of the audio only
    "understand": ({DECRYPT, GENERATE} | STEP_DOCS, c.MODEL_INTENT_KEYWORDS),  # intent and keywords: one call
    "plan": ({DECRYPT, GENERATE} | STEP_DOCS, c.MODEL_LLM),
    "answer": ({_get(IN), DECRYPT, GENERATE} | STEP_DOCS_WRITE, c.MODEL_VLM),
    "segment": (
        {_get(IN), _put(OUT), DECRYPT, GENERATE} | STEP_DOCS_WRITE,
        c.MODEL_GROUNDED_SAM,
    ),  # inputs/ copies only
    "tag": ({_get(IN), DECRYPT, GENERATE} | STEP_DOCS_WRITE, c.MODEL_CLIP_TAGGING),
    "prompt": ({_get(IN), DECRYPT, GENERATE} | STEP_DOCS_WRITE, c.MODEL_CLIP_INTERROGATOR),
    "interrogate": ({_get(IN), DECRYPT, GENERATE} | STEP_DOCS_WRITE, c.MODEL_CLIP_INTERROGATOR),
    "restyle": ({DECRYPT, GENERATE} | STEP_DOCS, c.MODEL_RESTYLE),  # its container reads and writes the images
    # reads the step documents; writes the result document only (no step document of its own)
    "assemble": ({_get("inputs/*/*/steps/"), DECRYPT, GENERATE, RESULT_DOC}, None),
}


def _resource_token(value: dict) -> str:
    """The data key, the pipeline key or `<logical id>` of another resource, for the readable pairs."""
    if "Fn::ImportValue" in value and c.ENCRYPTION_KEY_ID in str(value):
        return KEY
    if "Fn::GetAtt" in value and value["Fn::GetAtt"][0].startswith(c.PIPELINE_ID + c.PIPELINE_KEY_ID):
        return PIPELINE_KEY
    if "Fn::GetAtt" in value:
        return f"<{value['Fn::GetAtt'][0]}>"
    raise AssertionError(f"unexpected IAM resource {value}")


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _pairs(template: dict, role_id: str, env: str, config) -> tuple[set, list[dict]]:
    """(action, resource) pairs of every policy attached to the role, with readable resources; and the statements."""
    bucket = f"arn:aws:s3:::{config.prefix}-requests-{ACCOUNT}-us-east-1"
    states = f"arn:aws:states:us-east-1:{ACCOUNT}"
    sagemaker = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:"
    readable = [
        (f"{states}:stateMachine:{config.prefix}-pipeline", "<express>"),
        (f"{states}:stateMachine:{config.prefix}-jobs", "<standard>"),
        (f"{states}:execution:{config.prefix}-jobs:*", "<standard executions>"),
        (f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{c.idempotency_table_name(config.prefix)}", TABLE),
        (bucket, R),
        (sagemaker, ""),
    ]
    pairs, statements = set(), []
    for policy in template["Resources"].values():
        if policy["Type"] != "AWS::IAM::Policy" or {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            statements.append(statement)
            for action in _as_list(statement["Action"]):
                for resource in _as_list(statement["Resource"]):
                    text = render(resource, _resource_token)
                    for literal, name in readable:
                        text = text.replace(literal, name) if text.startswith(literal) else text
                    pairs.add((action, text))
    return pairs, statements


def _endpoint_pairs(config, role: str | None) -> set:
    if role is None or not getattr(config.models, role).enabled:
        return set()
    name = f"{config.prefix}-{role.replace('_', '-')}"
    pairs = {("sagemaker:InvokeEndpoint", f"endpoint/{name}")}
    if getattr(config.models, role).scaling.scale_to_zero:
        pairs.add(("sagemaker:InvokeEndpoint", f"inference-component/{name}-ic"))
    return pairs


def _function_roles(template: dict) -> dict[str, tuple[str, str]]:
    """function name -> (role logical id, log group logical id)"""
    found = {}
    for function in template["Resources"].values():
        if function["Type"] == "AWS::Lambda::Function":
            properties = function["Properties"]
            log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
            found[properties["Handler"].split(".")[2]] = (properties["Role"]["Fn::GetAtt"][0], log_group)
    return found


def test_each_function_role_has_exactly_its_documented_permissions(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        for name, (role_id, log_group) in _function_roles(template).items():
            pairs, _ = _pairs(template, role_id, env, config)
            documented, model_role = DOCUMENTED[name]
            own_logs = {("logs:CreateLogStream", f"<{log_group}>"), ("logs:PutLogEvents", f"<{log_group}>")}
            expected = documented | _endpoint_pairs(config, model_role) | XRAY | own_logs
            assert pairs == expected, (env, name, pairs ^ expected)


def test_function_roles_have_no_managed_or_inline_policies(assembly, configs):
    for env in configs:
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        for name, (role_id, _) in _function_roles(template).items():
            role = template["Resources"][role_id]["Properties"]
            assert "ManagedPolicyArns" not in role and "Policies" not in role, name
            assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_bucket_listing_and_kms_are_scoped(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        for name, (role_id, _) in _function_roles(template).items():
            _, statements = _pairs(template, role_id, env, config)
            for statement in statements:
                actions = _as_list(statement["Action"])
                if "s3:ListBucket" in actions:
                    assert statement["Condition"] == {"StringLike": {"s3:prefix": ["uploads/*", "inputs/*"]}}, name
                if any(action.startswith("kms:") for action in actions) and "states:" in str(statement["Condition"]):
                    continue  # the pipeline key through Step Functions: test_secrets_and_encryption.py
                if any(action.startswith("kms:") for action in actions):
                    # S3 objects; the jobs function also reads and writes the idempotency table
                    services = ["s3"] + (["dynamodb"] if name == c.FUNCTION_JOBS else [])
                    assert statement["Condition"] in [
                        {"StringEquals": {"kms:ViaService": f"{service}.us-east-1.amazonaws.com"}}
                        for service in services
                    ], (name, statement)


def test_only_tracing_and_log_delivery_use_a_star_resource(assembly, configs):
    for env in configs:
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        for policy_id, policy in template["Resources"].items():
            if policy["Type"] != "AWS::IAM::Policy":
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "*" in _as_list(statement["Resource"]):
                    actions = set(_as_list(statement["Action"]))
                    assert all(a.startswith("xray:") or a in LOG_DELIVERY for a in actions), (policy_id, actions)


def test_state_machines_invoke_only_the_step_functions(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[f"{env}/{c.API_STACK_ID}"]
        function_ids = {
            properties["Handler"].split(".")[2]: logical_id
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Lambda::Function"
            for properties in [resource["Properties"]]
        }
        # the Express machine runs no jobs-only route (restyle): it may not invoke those steps
        jobs_only = {step for task in steps.JOBS_ONLY_TASKS for step in steps.ROUTES[steps.Route(task)].steps}
        machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
        assert len(machines) == 2
        for machine in machines:
            express = machine["Properties"]["StateMachineType"] == "EXPRESS"
            names = [name for name in c.STEP_FUNCTIONS if not (express and name in jobs_only)]
            step_arns = {f"<{function_ids[name]}>" for name in names}
            expected_invoke = {("lambda:InvokeFunction", arn) for arn in step_arns}
            expected_invoke |= {("lambda:InvokeFunction", f"{arn}:*") for arn in step_arns}
            role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
            pairs, _ = _pairs(template, role_id, env, config)
            invoke = {p for p in pairs if p[0].startswith("lambda:")}
            assert invoke == expected_invoke, (env, invoke ^ expected_invoke)
            others = {pair for pair in pairs if not pair[0].startswith(("lambda:", "xray:"))}
            assert {action for action, _ in others - PIPELINE_KEY_USE} <= LOG_DELIVERY, others
