"""The request-path functions (docs/pipeline.md "Functions", "Environment variables", "Permissions"): the three
API functions and the pipeline steps (lambdas/vlp/steps.py), each with exactly the access its row of the
permissions table gives it. Names of the bucket, the endpoints and the state machines are deterministic, so every
IAM resource is a literal ARN (no cross-stack tokens) and the wildcard acknowledgements are computed exactly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from vlp import steps

from stacks import constants as c
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.request_function import RequestFunction
from stacks.service_logs import removal_policy

ROOT = Path(__file__).resolve().parent.parent
CODE_EXCLUDE = ["tests", "**/tests", "**/__pycache__", "**/*.pyc"]
LOG_LEVEL = "INFO"

# One reason for every resource wildcard of the request path (IAM5), so each acknowledgement says the same thing.
WILDCARD_REASON = (
    "Request path resource scopes: S3 object prefixes of the requests bucket (uploads/, inputs/, results/), "
    "executions of our own Standard state machine, versions of our own step functions, and the X-Ray and "
    "CloudWatch Logs delivery actions, which support no resource-level permissions."
)
DLQ_REASON = (
    "Invoked synchronously only (API Gateway proxy, Step Functions tasks): errors return to the caller or to the "
    "state machine's Retry/Catch; a dead-letter queue only applies to asynchronous invocations."
)
RUNTIME_REASON = (
    "python3.12 on purpose: the dependencies layer (requirements/lambda.txt) is locked and built for CPython 3.12 "
    "arm64; move runtime and lock together."
)


@dataclass(frozen=True)
class ModelTarget:
    """Where a model role is served: the endpoint, and the inference component on it (scale-to-zero endpoints)."""

    endpoint_name: str
    inference_component_name: str | None = None


@dataclass(frozen=True)
class RequestPathInputs:
    """What the request path (the Api stack and its functions) is built from: the environment's configuration, the
    Storage stack's data key and the model endpoints by role (names, not tokens: IAM resources stay literal ARNs)."""

    config: EnvironmentConfig
    key: kms.IKey
    models: Mapping[str, ModelTarget]


@dataclass(frozen=True)
class FunctionSpec:
    """A row of docs/pipeline.md's function and permissions tables."""

    memory_mb: int
    timeout_seconds: int | None  # None: the API integration timeout - 1 s (analyze)
    read_timeout_seconds: int | None = None  # model steps: SAGEMAKER_READ_TIMEOUT_SECONDS; timeout = read + margin
    model_role: str | None = None  # the endpoint it invokes
    reads: tuple[str, ...] = ()  # s3:GetObject (kms:Decrypt)
    writes: tuple[str, ...] = ()  # s3:PutObject (kms:GenerateDataKey)
    lists: tuple[str, ...] = ()  # s3:ListBucket on these prefixes


def _plus(prefixes: tuple[str, ...], *extra: str) -> tuple[str, ...]:
    """``prefixes`` and the ``extra`` patterns none of them covers already."""
    return prefixes + tuple(pattern for pattern in extra if not any(pattern.startswith(p) for p in prefixes))


def _step_spec(step: steps.Step) -> FunctionSpec:
    """A pipeline step's row, from the registry (lambdas/vlp/steps.py: memory, timeouts, role, S3 access), plus
    what a jobs execution needs of every step (vlp.pipeline.stored): its step documents, read and written; assemble
    reads them and writes the result document only (stored.keep stores its response whole, no step document)."""
    stored_writes = (steps.RESULT_DOCUMENTS,) if step.name == steps.ASSEMBLE else (steps.STEP_DOCUMENTS,)
    return FunctionSpec(
        step.memory_mb,
        step.function_timeout_seconds,
        read_timeout_seconds=step.read_timeout_seconds,
        model_role=step.role,
        reads=_plus(step.reads, steps.STEP_DOCUMENTS),
        writes=_plus(step.writes, *stored_writes),
        lists=step.lists,
    )


UP, IN, OUT = c.UPLOADS_PREFIX, c.INPUTS_PREFIX, c.RESULTS_PREFIX
assert (steps.UPLOADS, steps.INPUTS, steps.RESULTS) == (UP, IN, OUT)
SPECS: dict[str, FunctionSpec] = {
    c.FUNCTION_UPLOADS: FunctionSpec(256, 10, writes=(UP,)),
    c.FUNCTION_ANALYZE: FunctionSpec(256, None, reads=(OUT,)),
    c.FUNCTION_JOBS: FunctionSpec(256, 10, reads=(OUT,), writes=(steps.REQUEST_DOCUMENTS,)),  # the job's request
    **{step.name: _step_spec(step) for step in steps.STEPS},
}
assert set(SPECS) == set(c.API_FUNCTIONS + c.STEP_FUNCTIONS)


IDEMPOTENCY_TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# What a caller of a table encrypted with a customer managed key needs (DynamoDB calls KMS on its behalf).
IDEMPOTENCY_KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]


@dataclass(frozen=True)
class StateMachineNames:
    express: str  # POST /v1/analyze (StartSyncExecution)
    standard: str  # POST /v1/jobs, GET /v1/jobs/{id}


def step_environment(config: EnvironmentConfig, models: Mapping[str, ModelTarget]) -> dict[str, str]:
    """What every pipeline step reads (one environment for all of them, docs/pipeline.md); disabled roles stay empty."""
    vlm_tgi = config.models.vlm.tgi
    environment = {
        c.ENV_VLM_MESSAGES_API: "true" if vlm_tgi is not None and vlm_tgi.messages_api else "false",
        c.ENV_VLM_IMAGE_TRANSPORT: "data_uri",
    }
    for role in c.MODEL_ROLES:
        target = models.get(role)
        environment[c.endpoint_env_var(role)] = target.endpoint_name if target else ""
        environment[c.inference_component_env_var(role)] = (target.inference_component_name or "") if target else ""
    return environment


def function_name(config: EnvironmentConfig, name: str) -> str:
    """`vlp-dev-api-uploads`, `vlp-dev-step-answer` (the `step-` keeps them apart from the endpoints' names)."""
    return f"{config.prefix}-{'api' if name in c.API_FUNCTIONS else 'step'}-{name}"


class RequestFunctions(Construct):
    """`functions[name]` for every name of constants.API_FUNCTIONS and constants.STEP_FUNCTIONS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        inputs: RequestPathInputs,
        layer: lambda_.ILayerVersion,
        state_machines: StateMachineNames,
    ) -> None:
        super().__init__(scope, construct_id)
        config = self._config = inputs.config
        self._stack = cdk.Stack.of(self)
        self._key = inputs.key
        self._models = {role: target for role, target in inputs.models.items() if getattr(config.models, role).enabled}
        self._bucket_name = config.bucket_name("requests", self._stack.account)
        self._bucket_arn = f"arn:{self._stack.partition}:s3:::{self._bucket_name}"
        self._state_machines = state_machines
        self._wildcards: set[str] = set()
        code = lambda_.Code.from_asset(str(ROOT / c.LAMBDA_CODE_DIR), exclude=CODE_EXCLUDE)
        removal = removal_policy(config)
        environments = self._environments()
        self.functions: dict[str, lambda_.Function] = {}
        for name, spec in SPECS.items():
            function = RequestFunction(
                self,
                c.function_construct_id(name),
                name=name,
                function_name=function_name(config, name),
                code=code,
                layer=layer,
                memory_mb=spec.memory_mb,
                timeout_seconds=spec.timeout_seconds or config.api.sync_timeout_seconds - 1,
                environment=environments[name],
                removal_policy=removal,
            )
            self._grant(function, spec)
            self.functions[name] = function.function
        self._acknowledge()

    # ---- environment ----
    def _environments(self) -> dict[str, dict[str, str]]:
        api = self._config.api
        common = {
            c.ENV_REQUESTS_BUCKET: self._bucket_name,
            c.ENV_POWERTOOLS_SERVICE_NAME: c.APP_NAME,
            c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.metrics_namespace(self._config.name),
            c.ENV_LOG_LEVEL: LOG_LEVEL,
        }
        api_common = {
            **common,
            c.ENV_PRESIGN_EXPIRY_SECONDS: str(api.presign_expiry_seconds),
            c.ENV_CORS_ALLOW_ORIGINS: ",".join(api.cors_origins),
        }
        steps = {**common, **step_environment(self._config, self._models)}
        environments = {
            c.FUNCTION_UPLOADS: {**api_common, c.ENV_MAX_UPLOAD_BYTES: str(api.max_upload_bytes)},
            c.FUNCTION_ANALYZE: {
                **api_common,
                c.ENV_STATE_MACHINE_ARN: self._state_machine_arn(self._state_machines.express),
            },
            c.FUNCTION_JOBS: {
                **api_common,
                c.ENV_JOBS_STATE_MACHINE_ARN: self._state_machine_arn(self._state_machines.standard),
                c.ENV_IDEMPOTENCY_TABLE: c.idempotency_table_name(self._config.prefix),
            },
        }
        for name in c.STEP_FUNCTIONS:
            environments[name] = dict(steps)
            read_timeout = SPECS[name].read_timeout_seconds
            if read_timeout is not None:
                environments[name][c.ENV_SAGEMAKER_READ_TIMEOUT_SECONDS] = str(read_timeout)
        return environments

    # ---- permissions (docs/pipeline.md "Permissions") ----
    def _grant(self, function: RequestFunction, spec: FunctionSpec) -> None:
        if spec.reads:
            function.allow(["s3:GetObject"], self._objects(spec.reads))
        if spec.writes:
            function.allow(["s3:PutObject"], self._objects(spec.writes))
        if spec.lists:
            # Without it S3 answers 403 instead of 404 for a key that was never uploaded.
            function.allow(
                ["s3:ListBucket"],
                [self._bucket_arn],
                {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in spec.lists]}},
            )
        kms_actions = (["kms:Decrypt"] if spec.reads else []) + (["kms:GenerateDataKey"] if spec.writes else [])
        if kms_actions:
            function.allow(
                kms_actions,
                [self._key.key_arn],
                {"StringEquals": {"kms:ViaService": f"s3.{self._stack.region}.amazonaws.com"}},
            )
        if spec.model_role and spec.model_role in self._models:
            function.allow(["sagemaker:InvokeEndpoint"], self._model_arns(self._models[spec.model_role]))
        if function.name == c.FUNCTION_ANALYZE:
            function.allow(["states:StartSyncExecution"], [self._state_machine_arn(self._state_machines.express)])
        elif function.name == c.FUNCTION_JOBS:
            executions = self._stack.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{self._state_machines.standard}:*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            self._wildcards.add(executions)
            function.allow(["states:StartExecution"], [self._state_machine_arn(self._state_machines.standard)])
            function.allow(["states:DescribeExecution"], [executions])
            self._grant_idempotency_table(function)
        self._wildcards.add("*")  # X-Ray (Tracing.ACTIVE)

    def _grant_idempotency_table(self, function: RequestFunction) -> None:
        """Idempotency-Key records (Powertools' DynamoDB persistence layer): these four item actions on this one
        table; the data key only through DynamoDB (the table is encrypted with it)."""
        table = self._stack.format_arn(
            service="dynamodb",
            resource="table",
            resource_name=c.idempotency_table_name(self._config.prefix),
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
        function.allow(IDEMPOTENCY_TABLE_ACTIONS, [table])
        function.allow(
            IDEMPOTENCY_KEY_ACTIONS,
            [self._key.key_arn],
            {"StringEquals": {"kms:ViaService": f"dynamodb.{self._stack.region}.amazonaws.com"}},
        )

    def _objects(self, prefixes: tuple[str, ...]) -> list[str]:
        # a prefix (ends with /) and what lies under it, or one key pattern (the jobs' request and result documents)
        arns = [f"{self._bucket_arn}/{prefix}{'*' if prefix.endswith('/') else ''}" for prefix in prefixes]
        self._wildcards.update(arns)
        return arns

    def _model_arns(self, target: ModelTarget) -> list[str]:
        arns = [self._sagemaker_arn("endpoint", target.endpoint_name)]
        if target.inference_component_name:
            arns.append(self._sagemaker_arn("inference-component", target.inference_component_name))
        return arns

    def _sagemaker_arn(self, resource: str, name: str) -> str:
        return self._stack.format_arn(
            service="sagemaker",
            resource=resource,
            resource_name=name.lower(),
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _state_machine_arn(self, name: str) -> str:
        return self._stack.format_arn(
            service="states", resource="stateMachine", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )

    # ---- cdk-nag ----
    def _acknowledge(self) -> None:
        acknowledge_wildcard_resources(self, sorted(self._wildcards), WILDCARD_REASON)
        acknowledge(self, "Serverless-LambdaDLQ", DLQ_REASON)
        acknowledge(self, "AwsSolutions-L1", RUNTIME_REASON)
        acknowledge(self, "Serverless-LambdaLatestVersion", RUNTIME_REASON)
