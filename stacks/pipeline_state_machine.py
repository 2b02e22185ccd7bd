"""The request pipeline as a Step Functions state machine: ONE definition builder for the Express machine
(POST /v1/analyze) and the Standard machine (jobs). docs/pipeline.md "State machine" is the contract, and its
`asl:begin` block is what the infra tests compare the synthesized Express definition with."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.request_function import LOG_RETENTION, depend_on_policy_only

_Catchable = TypeVar("_Catchable", bound=sfn.TaskStateBase | sfn.Parallel)  # the states that take a Catch

COMMENT = (
    "VLP request pipeline. Same definition for the Express machine (POST /v1/analyze) and the Standard machine "
    "(POST /v1/jobs)."
)
STANDARD_TIMEOUT_SECONDS = 3600
# The analyze function answers PIPELINE_TIMEOUT itself if the Express machine stops this much before the API does.
EXPRESS_TIMEOUT_MARGIN_SECONDS = 5

SECONDS = cdk.Duration.seconds
LAMBDA_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Keyword arguments of State.add_retry, in the order docs/pipeline.md lists the retriers.
LAMBDA_RETRY: dict[str, Any] = {
    "errors": LAMBDA_ERRORS,
    "interval": SECONDS(1),
    "max_attempts": 3,
    "backoff_rate": 2,
    "jitter_strategy": sfn.JitterType.FULL,
}
MODEL_RETRY: dict[str, Any] = {
    "errors": ["ModelRetryableError", "DependencyError"],
    "interval": SECONDS(1),
    "max_attempts": 3,
    "backoff_rate": 2,
    "max_delay": SECONDS(8),
    "jitter_strategy": sfn.JitterType.FULL,
}
TIMEOUT_RETRY: dict[str, Any] = {"errors": ["ModelTimeoutError"], "interval": SECONDS(2), "max_attempts": 1}
VALIDATE_RETRY: dict[str, Any] = {
    "errors": ["DependencyError"],
    "interval": SECONDS(1),
    "max_attempts": 2,
    "backoff_rate": 2,
    "jitter_strategy": sfn.JitterType.FULL,
}
# Standard only: an endpoint starting from zero instances (~25 minutes of retries).
NOT_READY_RETRY: dict[str, Any] = {
    "errors": ["ModelNotReadyError"],
    "interval": SECONDS(60),
    "max_attempts": 10,
    "backoff_rate": 1.5,
    "max_delay": SECONDS(300),
    "jitter_strategy": sfn.JitterType.FULL,
}


class MachineKind(Enum):
    EXPRESS = "express"
    STANDARD = "standard"


def state_machine_name(config: EnvironmentConfig, kind: MachineKind) -> str:
    """Deterministic, so the API functions' IAM resources and environment are literal ARNs: `vlp-dev-pipeline`."""
    return f"{config.prefix}-{'pipeline' if kind is MachineKind.EXPRESS else 'jobs'}"


def express_timeout_seconds(config: EnvironmentConfig) -> int:
    return config.api.sync_timeout_seconds - EXPRESS_TIMEOUT_MARGIN_SECONDS


class _Builder:
    """Builds the states of one machine (states are constructs: each machine gets its own)."""

    def __init__(self, scope: Construct, functions: Mapping[str, lambda_.IFunction], kind: MachineKind) -> None:
        self._scope = scope
        self._functions = functions
        self._kind = kind
        self.failed = sfn.Fail(scope, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")

    def _task(self, state: str, function: str, *, result_path: str | None = None) -> tasks.LambdaInvoke:
        # The plain function ARN as Resource: the task's result is the function's return value itself.
        task = tasks.LambdaInvoke(
            self._scope,
            state,
            lambda_function=self._functions[function],
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
        )
        task.add_retry(**LAMBDA_RETRY)
        return task

    def model_task(
        self, state: str, function: str, *, result_path: str | None = None, catch: bool = True
    ) -> tasks.LambdaInvoke:
        task = self._task(state, function, result_path=result_path)
        task.add_retry(**MODEL_RETRY)
        task.add_retry(**TIMEOUT_RETRY)
        if self._kind is MachineKind.STANDARD:
            task.add_retry(**NOT_READY_RETRY)
        if catch:
            self.catch(task)
        return task

    def plain_task(self, state: str, function: str, *, retries: tuple[dict[str, Any], ...] = ()) -> tasks.LambdaInvoke:
        task = self._task(state, function)
        for retry in retries:
            task.add_retry(**retry)
        return self.catch(task)

    def catch(self, state: _Catchable) -> _Catchable:
        state.add_catch(self.failed, errors=[sfn.Errors.ALL], result_path="$.error")
        return state

    def definition(self) -> sfn.IChainable:
        scope = self._scope
        validate = self.plain_task("Validate", "validate", retries=(VALIDATE_RETRY,))
        transcribe = self.model_task("Transcribe", "asr", result_path="$.asr")
        understand = self.catch(
            sfn.Parallel(
                scope,
                "Understand",
                result_selector={
                    "intent": sfn.JsonPath.string_at("$[0]"),
                    "keywords": sfn.JsonPath.string_at("$[1]"),
                    "answer": sfn.JsonPath.string_at("$[2]"),
                },
                result_path="$.understand",
            )
        )
        answer = self.model_task("Answer", "vlm", catch=False)
        understand.branch(self.model_task("Intent", "intent", catch=False))
        understand.branch(self.model_task("Keywords", "keywords", catch=False))
        understand.branch(
            sfn.Choice(scope, "NeedsPlan")
            .when(
                sfn.Condition.boolean_equals("$.options.detail", True),
                self.model_task("Plan", "plan", result_path="$.plan", catch=False).next(answer),
            )
            .otherwise(answer)
        )
        assemble = self.plain_task("Assemble", "assemble")
        routed = {
            route: self.model_task(route.capitalize(), route, result_path="$.result").next(assemble)
            for route in ("segment", "tag", "prompt")
        }
        route = sfn.Choice(scope, "Route")
        for name, task in routed.items():
            route.when(sfn.Condition.string_equals("$.understand.intent.route", name), task)
        route.otherwise(assemble)
        has_audio = (
            sfn.Choice(scope, "HasAudio")
            .when(
                sfn.Condition.and_(sfn.Condition.is_present("$.audio"), sfn.Condition.is_not_null("$.audio")),
                transcribe.next(understand),
            )
            .otherwise(understand)
        )
        understand.next(route)
        return validate.next(has_audio)


def pipeline_definition(
    scope: Construct, *, functions: Mapping[str, lambda_.IFunction], kind: MachineKind
) -> sfn.IChainable:
    """The documented pipeline; `functions` maps the step names (constants.STEP_FUNCTIONS) to functions."""
    return _Builder(scope, functions, kind).definition()


class PipelineStateMachine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        kind: MachineKind,
        functions: Mapping[str, lambda_.IFunction],
        encryption: sfn.EncryptionConfiguration,
    ) -> None:
        super().__init__(scope, construct_id)
        name = state_machine_name(config, kind)
        removal = cdk.RemovalPolicy.RETAIN if config.removal_policy == "retain" else cdk.RemovalPolicy.DESTROY
        # /aws/vendedlogs/: Step Functions' log delivery does not grow the account's CloudWatch Logs resource policy.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=LOG_RETENTION,
            removal_policy=removal,
        )
        timeout = express_timeout_seconds(config) if kind is MachineKind.EXPRESS else STANDARD_TIMEOUT_SECONDS
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.EXPRESS
            if kind is MachineKind.EXPRESS
            else sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(
                pipeline_definition(self, functions=functions, kind=kind)
            ),
            comment=COMMENT,
            timeout=cdk.Duration.seconds(timeout),
            tracing_enabled=True,
            # the definition and every execution's data under the pipeline's customer-managed key
            encryption_configuration=encryption,
            # ERROR only, without execution data: inputs hold user text.
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
        )
        depend_on_policy_only(self.state_machine, self.state_machine.role)
