"""One deployment environment (dev, prod, ...) as a CDK Stage: the stacks wired together."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks import constants as c
from stacks.api_stack import ApiStack
from stacks.config import EnvironmentConfig
from stacks.endpoint_alarms import EndpointTarget
from stacks.function_vpc import attach_functions_to_vpc
from stacks.hosting_stack import HostingStack
from stacks.monitoring_stack import MonitoringStack
from stacks.pipeline_functions import ModelTarget, RequestPathInputs, function_name
from stacks.pipeline_state_machine import MachineKind, state_machine_name
from stacks.service_logs import ApiExecutionLogs, EndpointLogGroups, ServiceLogs, allow_log_encryption
from stacks.service_monitoring import ServiceTargets
from stacks.storage_stack import StorageStack


class VlpStage(cdk.Stage):
    def __init__(self, scope: Construct, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, config.name, env=cdk.Environment(account=config.account, region=config.region))
        self.config = config
        self.storage = StorageStack(
            self, c.STORAGE_STACK_ID, config=config, description=f"{config.prefix}: buckets and keys"
        )
        self.hosting = HostingStack(
            self,
            c.HOSTING_STACK_ID,
            config=config,
            key=self.storage.key,
            description=f"{config.prefix}: SageMaker model endpoints",
        )
        self.hosting.add_stack_dependency(self.storage)
        self.api = ApiStack(
            self,
            c.API_STACK_ID,
            inputs=RequestPathInputs(
                config=config,
                key=self.storage.key,
                models={
                    role: ModelTarget(endpoint.endpoint_name, endpoint.inference_component_name)
                    for role, endpoint in self.hosting.endpoints.items()
                },
            ),
            description=f"{config.prefix}: HTTP API, request pipeline state machines and functions",
        )
        self.api.add_stack_dependency(self.storage)
        self.api.add_stack_dependency(self.hosting)
        attach_functions_to_vpc(self.api, config.vpc)  # the optional VPC (config `vpc`)
        self._wire_logs(config)
        self.monitoring = MonitoringStack(
            self,
            c.MONITORING_STACK_ID,
            config=config,
            service=ServiceTargets(
                rest_api=self.api.api.rest_api,
                stage_name=c.API_STAGE_NAME,
                function_names={name: function_name(config, name) for name in (*c.API_FUNCTIONS, *c.STEP_FUNCTIONS)},
                express_state_machine=state_machine_name(config, MachineKind.EXPRESS),
                standard_state_machine=state_machine_name(config, MachineKind.STANDARD),
                web_acl=self.api.firewall.web_acl if self.api.firewall else None,
            ),
            endpoints=[
                EndpointTarget(role, endpoint.endpoint_name, endpoint.inference_component_name, endpoint.config)
                for role, endpoint in self.hosting.endpoints.items()
            ],
            description=f"{config.prefix}: alarms, dashboard, failed-job notifications and budget",
        )
        self.monitoring.add_stack_dependency(self.hosting)
        self.monitoring.add_stack_dependency(self.api)
        for key, value in {"app": c.APP_NAME, **config.tags}.items():
            cdk.Tags.of(self).add(key, value)

    def _wire_logs(self, config: EnvironmentConfig) -> None:
        """The log groups SageMaker and API Gateway would create at run time, created first by the stacks; the
        configured retention on every log group of the stage, the data key on those with user data."""
        allow_log_encryption(self.storage.key)
        for role, endpoint in self.hosting.endpoints.items():
            EndpointLogGroups(
                self.hosting,
                f"{c.model_construct_id(role)}{c.ENDPOINT_LOGS_ID}",
                config=config,
                endpoint_name=endpoint.endpoint_name,
                inference_component_name=endpoint.inference_component_name,
                execution_role=endpoint.role,
                dependents=[endpoint.endpoint],
            )
        ApiExecutionLogs(
            self.api,
            c.API_EXECUTION_LOGS_ID,
            config=config,
            rest_api=self.api.api.rest_api,
            stage_name=c.API_STAGE_NAME,
        )
        cdk.Aspects.of(self).add(ServiceLogs(retention_days=config.logs.retention_days, key=self.storage.key))
