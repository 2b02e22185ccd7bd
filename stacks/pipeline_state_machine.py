"""The request pipeline as a Step Functions state machine: ONE definition builder for the Express machine
(POST /v1/analyze) and the Standard machine (jobs). docs/pipeline.md "State machine" is the contract, and its
`asl:begin` block is what the infra tests compare the synthesized Express definition with."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct
from vlp import steps

from stacks.config import EnvironmentConfig
from stacks.request_function import depend_on_policy_only
from stacks.service_logs import removal_policy, request_log_group

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
    """Builds the states of one machine from the step registry (vlp.steps; states are constructs: each machine gets
    its own)."""

    def __init__(self, scope: Construct, functions: Mapping[str, lambda_.IFunction], kind: MachineKind) -> None:
        self._scope = scope
        self._functions = functions
        self._kind = kind
        self.failed = sfn.Fail(scope, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")

    def task(self, name: str, *, catch: bool = True) -> tasks.LambdaInvoke:
        """The Task state of step `name`: its function, result path and retriers (vlp.steps.Step)."""
        step = steps.BY_NAME[name]
        # The plain function ARN as Resource: the task's result is the function's return value itself.
        task = tasks.LambdaInvoke(
            self._scope,
            step.state,
            lambda_function=self._functions[step.name],
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=step.result_path,
        )
        for retry in self._retries(step.retry):
            task.add_retry(**retry)
        return self.catch(task) if catch else task

    def _retries(self, retry: steps.Retry) -> tuple[dict[str, Any], ...]:
        if retry is steps.Retry.MODEL:
            standard = (NOT_READY_RETRY,) if self._kind is MachineKind.STANDARD else ()
            return (LAMBDA_RETRY, MODEL_RETRY, TIMEOUT_RETRY, *standard)
        return (LAMBDA_RETRY, VALIDATE_RETRY)  # Retry.VALIDATE

    def catch(self, state: _Catchable) -> _Catchable:
        state.add_catch(self.failed, errors=[sfn.Errors.ALL], result_path="$.error")
        return state

    def _skip(self, state: str, path: str, result: dict[str, Any]) -> sfn.Pass:
        """A Pass state that writes a skipped step result (what the step would say), so every path has one."""
        return sfn.Pass(self._scope, state, result=sfn.Result.from_object(result), result_path=path)

    def _routes(self) -> sfn.IChainable:
        """Branch (a): Understand, then the Route Choice on the route it wrote, then that route's steps."""
        route = sfn.Choice(self._scope, steps.ROUTE_STATE)
        for name in steps.ROUTED:
            spec = steps.ROUTES[name]
            if spec.jobs_only and self._kind is MachineKind.EXPRESS:
                continue  # the validate step refuses it on POST /v1/analyze
            chain = sfn.Chain.start(self.task(spec.steps[0], catch=False))
            for step in spec.steps[1:]:
                chain = chain.next(self.task(step, catch=False))
            route.when(sfn.Condition.string_equals(steps.ROUTE_PATH, name.value), chain)
        route.otherwise(
            self._skip(
                "Described", steps.ROUTED_RESULT_PATH, {"step": "none", "skipped": True, "reason": "no routed task"}
            )
        )
        return self.task(steps.UNDERSTAND, catch=False).next(route)

    def _answer(self) -> sfn.IChainable:
        """Branch (b): the plan when asked, then the VLM's answer; skipped for a task that needs no answer."""
        answer = self.task(steps.ANSWER, catch=False)
        no_answer = self._skip(
            "NoAnswer",
            steps.BY_NAME[steps.ANSWER].result_path or "",
            {"step": "answer", "skipped": True, "reason": "not needed for the task"},
        )
        needs = sfn.Choice(self._scope, "NeedsAnswer")
        for task in steps.NO_ANSWER_TASKS:
            if task in steps.JOBS_ONLY_TASKS and self._kind is MachineKind.EXPRESS:
                continue  # as in the Route Choice: never on the Express machine
            needs.when(sfn.Condition.string_equals("$.task", task), no_answer)
        needs.when(
            sfn.Condition.boolean_equals("$.options.detail", True), self.task(steps.PLAN, catch=False).next(answer)
        )
        return needs.otherwise(answer)

    def definition(self) -> sfn.IChainable:
        answer_path = steps.BY_NAME[steps.ANSWER].result_path or ""
        analyze = self.catch(
            sfn.Parallel(
                self._scope,
                steps.ANALYZE_STATE,
                result_selector={
                    "understand": sfn.JsonPath.object_at(f"$[0].{steps.ROUTE_PATH.split('.')[1]}"),
                    "result": sfn.JsonPath.object_at(f"$[0]{steps.ROUTED_RESULT_PATH[1:]}"),
                    "answer": sfn.JsonPath.object_at(f"$[1]{answer_path[1:]}"),
                },
                result_path=steps.ANALYSIS_PATH,
            )
        )
        analyze.branch(self._routes())
        analyze.branch(self._answer())
        analyze.next(self.task(steps.ASSEMBLE))
        has_audio = (
            sfn.Choice(self._scope, "HasAudio")
            .when(
                sfn.Condition.and_(sfn.Condition.is_present("$.audio"), sfn.Condition.is_not_null("$.audio")),
                self.task("transcribe").next(analyze),
            )
            .otherwise(analyze)
        )
        return self.task("validate").next(has_audio)


def pipeline_definition(
    scope: Construct, *, functions: Mapping[str, lambda_.IFunction], kind: MachineKind
) -> sfn.IChainable:
    """The documented pipeline; `functions` maps the step names (vlp.steps.STEP_NAMES) to functions."""
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
        # /aws/vendedlogs/: Step Functions' log delivery does not grow the account's CloudWatch Logs resource policy.
        self.log_group = request_log_group(self, "Logs", removal_policy(config), f"/aws/vendedlogs/states/{name}")
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
