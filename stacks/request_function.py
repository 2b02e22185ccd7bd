"""One request-path Lambda function: its own role (no managed policies), its own log group with retention,
active tracing, the shared code asset and the dependencies layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import constants as c
from stacks.lambda_layer import ARCHITECTURE, RUNTIME
from stacks.service_logs import request_log_group


def depend_on_policy_only(construct: Construct, role: iam.IRole) -> None:
    """CDK makes a function or state machine depend on its role and the role's policy; the role dependency repeats
    the GetAtt of the role (cfn-lint W3005), so keep only the policy's."""
    resource = construct.node.default_child
    policy = role.node.find_child("DefaultPolicy").node.default_child
    if not isinstance(resource, cdk.CfnResource) or not isinstance(policy, cdk.CfnResource):
        raise TypeError(f"{construct.node.path}: expected a CloudFormation resource and a role with a DefaultPolicy")
    resource.add_override("DependsOn", [policy.logical_id])


class RequestFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        function_name: str,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        memory_mb: int,
        timeout_seconds: int,
        environment: Mapping[str, str],
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Lambda function {function_name}",
        )
        self.log_group = request_log_group(self, "LogGroup", removal_policy, f"/aws/lambda/{function_name}")
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=f"VLP request path: {c.function_handler(name)}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=c.function_handler(name),
            code=code,
            layers=[layer],
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_seconds),
            environment=dict(environment),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
        )
        # The role is ours (CDK adds no AWSLambdaBasicExecutionRole to it): write access to this log group only.
        self.log_group.grant_write(self.role)
        depend_on_policy_only(self.function, self.role)

    def allow(self, actions: Sequence[str], resources: Sequence[str], conditions: Mapping | None = None) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(actions), resources=list(resources), conditions=dict(conditions) if conditions else None
            )
        )
