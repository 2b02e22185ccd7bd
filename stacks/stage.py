"""One deployment environment (dev, prod, ...) as a CDK Stage: the stacks wired together."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks import constants as c
from stacks.api_stack import ApiStack
from stacks.config import EnvironmentConfig
from stacks.function_vpc import attach_functions_to_vpc
from stacks.hosting_stack import HostingStack
from stacks.monitoring_stack import MonitoringStack
from stacks.pipeline_functions import ModelTarget
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
            config=config,
            key=self.storage.key,
            # Names, not tokens: the request path's IAM resources stay literal ARNs.
            models={
                role: ModelTarget(endpoint.endpoint_name, endpoint.inference_component_name)
                for role, endpoint in self.hosting.endpoints.items()
            },
            description=f"{config.prefix}: HTTP API, request pipeline state machines and functions",
        )
        self.api.add_stack_dependency(self.storage)
        self.api.add_stack_dependency(self.hosting)
        attach_functions_to_vpc(self.api, config.vpc)  # the optional VPC (config `vpc`)
        self.monitoring = MonitoringStack(
            self,
            c.MONITORING_STACK_ID,
            config=config,
            endpoint_names={role: endpoint.endpoint_name for role, endpoint in self.hosting.endpoints.items()},
            description=f"{config.prefix}: alarms and dashboard",
        )
        self.monitoring.add_stack_dependency(self.hosting)
        for key, value in {"app": c.APP_NAME, **config.tags}.items():
            cdk.Tags.of(self).add(key, value)
