"""The request path of one environment: the dependencies layer, the thirteen functions, the Express and
Standard state machines, the REST API and (config `api.waf`) its web ACL. docs/pipeline.md is the contract."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import constants as c
from stacks.api_firewall import ApiFirewall
from stacks.config import EnvironmentConfig
from stacks.lambda_layer import DependenciesLayer
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.pipeline_encryption import PipelineKey
from stacks.pipeline_functions import WILDCARD_REASON, RequestFunctions, RequestPathInputs, StateMachineNames
from stacks.pipeline_state_machine import MachineKind, PipelineStateMachine, state_machine_name
from stacks.service_api import ServiceApi

LOGGING_REASON = (
    "Step Functions logs at ERROR level without execution data (docs/pipeline.md): inputs hold user text; "
    "X-Ray traces and the execution history cover successful runs."
)


class ApiStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, inputs: RequestPathInputs, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config, key = inputs.config, inputs.key
        names = StateMachineNames(
            express=state_machine_name(config, MachineKind.EXPRESS),
            standard=state_machine_name(config, MachineKind.STANDARD),
        )
        layer = DependenciesLayer(
            self, c.LAMBDA_LAYER_ID, description=f"{config.prefix}: request path dependencies"
        ).layer
        self.functions = RequestFunctions(
            self, c.PIPELINE_FUNCTIONS_ID, inputs=inputs, layer=layer, state_machines=names
        ).functions
        self.express, self.standard = self._build_state_machines(config)
        self.api = ServiceApi(self, c.REST_API_ID, config=config, functions=self.functions)
        self.firewall = (
            ApiFirewall(self, c.WEB_ACL_ID, config=config, stage_arn=self.api.stage.stage_arn, key=key)
            if config.api.waf
            else None
        )
        cdk.CfnOutput(self, c.OUTPUT_API_URL, value=self.api.url)
        cdk.CfnOutput(self, c.OUTPUT_API_ID, value=self.api.rest_api.rest_api_id)
        cdk.CfnOutput(self, c.OUTPUT_STATE_MACHINE_ARN, value=self.express.state_machine_arn)
        cdk.CfnOutput(self, c.OUTPUT_JOBS_STATE_MACHINE_ARN, value=self.standard.state_machine_arn)

    def _build_state_machines(self, config: EnvironmentConfig) -> list[sfn.StateMachine]:
        pipeline = Construct(self, c.PIPELINE_ID)
        steps = {name: self.functions[name] for name in c.STEP_FUNCTIONS}
        key = PipelineKey(pipeline, c.PIPELINE_KEY_ID, config=config)
        machines = [
            PipelineStateMachine(
                pipeline, construct_id, config=config, kind=kind, functions=steps, encryption=key.encryption()
            ).state_machine
            for construct_id, kind in (
                (c.EXPRESS_STATE_MACHINE_ID, MachineKind.EXPRESS),
                (c.STANDARD_STATE_MACHINE_ID, MachineKind.STANDARD),
            )
        ]
        key.scope_log_delivery()
        # the functions that start executions and read their output (stacks/pipeline_functions.py grants the calls)
        key.grant_callers(state_machine_name(config, MachineKind.EXPRESS), [self.functions[c.FUNCTION_ANALYZE]])
        key.grant_callers(state_machine_name(config, MachineKind.STANDARD), [self.functions[c.FUNCTION_JOBS]])
        # LambdaInvoke grants each function and its versions (`<arn>:*`); logging and tracing need `*`.
        versions = [f"{function.function_arn}:*" for function in steps.values()]
        acknowledge_wildcard_resources(pipeline, [*versions, "*"], WILDCARD_REASON)
        acknowledge(pipeline, "AwsSolutions-SF1", LOGGING_REASON)
        return machines
