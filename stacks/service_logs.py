"""Every log group the service produces, created by the stacks with the configured retention (config
`logs.retention_days`), including those SageMaker and API Gateway would otherwise create at run time without
one, and encrypted with the environment's data key where they may hold user data.

- `/aws/sagemaker/Endpoints/<endpoint>`: the model containers' output (may quote inputs): data key;
- `/aws/sagemaker/InferenceComponents/<component>`: the same for an endpoint that hosts an inference component;
- `API-Gateway-Execution-Logs_<restApiId>/<stage>`: API Gateway's execution logs (ERROR level, no bodies);
- `/aws/lambda/<function>` (stacks/request_function.py): data key, error messages may quote request fields;
- `/aws/vendedlogs/states/<machine>` and the API access logs: no execution data, no bodies.

`ServiceLogs` is an aspect: it sets the retention of every log group of the stage, and the data key on the ones
above that hold user data, whoever created them."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from stacks.config import EnvironmentConfig
from stacks.model_endpoint import EXECUTION_ROLE_WILDCARD_REASON
from stacks.nag import acknowledge_wildcard_resources

USER_DATA_PREFIXES = ("/aws/lambda/", "/aws/sagemaker/")
# What the request path's log groups are created with; ServiceLogs then sets the configured retention on all of them.
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


def endpoint_log_group_name(endpoint_name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def component_log_group_name(component_name: str) -> str:
    return f"/aws/sagemaker/InferenceComponents/{component_name}"


def removal_policy(config: EnvironmentConfig) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if config.removal_policy == "retain" else cdk.RemovalPolicy.DESTROY


def request_log_group(
    scope: Construct, construct_id: str, removal: cdk.RemovalPolicy, name: str | None = None
) -> logs.LogGroup:
    """A log group of the request path (a function's, a state machine's, the API's access logs); `name`: its
    physical name, where the service that writes it expects one."""
    return logs.LogGroup(scope, construct_id, log_group_name=name, retention=LOG_RETENTION, removal_policy=removal)


@jsii.implements(cdk.IAspect)
class ServiceLogs:
    """Retention on every log group; the data key on those that may hold user data."""

    def __init__(self, *, retention_days: int, key: kms.IKey) -> None:
        self._days = retention_days
        self._key = key

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, logs.CfnLogGroup):
            return
        node.retention_in_days = self._days
        name = node.log_group_name
        if isinstance(name, str) and not cdk.Token.is_unresolved(name) and name.startswith(USER_DATA_PREFIXES):
            node.kms_key_id = self._key.key_arn


def allow_log_encryption(key: kms.IKey) -> None:
    """Let CloudWatch Logs use the data key for this account's log groups in the key's region (the key policy
    form CloudWatch Logs documents: the service principal, scoped by the encryption context's log group ARN)."""
    stack = cdk.Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsEncrypts",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],  # a key policy's resource is the key itself
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )


class EndpointLogGroups(Construct):
    """The log groups SageMaker writes an endpoint's (and its inference component's) container output to, created
    before the endpoint so SageMaker finds them instead of creating them without retention."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        endpoint_name: str,
        inference_component_name: str | None,
        execution_role: iam.IRole,
        dependents: list[Construct],
    ) -> None:
        super().__init__(scope, construct_id)
        names = [endpoint_log_group_name(endpoint_name)]
        if inference_component_name:
            names.append(component_log_group_name(inference_component_name))
        self.log_groups = [
            logs.LogGroup(
                self,
                "Endpoint" if index == 0 else "InferenceComponent",
                log_group_name=name,
                removal_policy=removal_policy(config),
            )
            for index, name in enumerate(names)
        ]
        if inference_component_name:
            # The containers of the component write to its own group (the endpoint's is granted in model_endpoint).
            streams = cdk.Stack.of(self).format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{names[1]}:log-stream:*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            execution_role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[streams],
                )
            )
            acknowledge_wildcard_resources(execution_role, [streams], EXECUTION_ROLE_WILDCARD_REASON)
        for dependent in dependents:
            for group in self.log_groups:
                dependent.node.add_dependency(group)


class ApiExecutionLogs(Construct):
    """`API-Gateway-Execution-Logs_<restApiId>/<stage>`, created before the stage that would create it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        rest_api: apigw.RestApi,
        stage_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stage = rest_api.deployment_stage
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            # the literal stage name: the stage's own Ref would make the stage depend on itself
            log_group_name=f"API-Gateway-Execution-Logs_{rest_api.rest_api_id}/{stage_name}",
            removal_policy=removal_policy(config),
        )
        stage.node.add_dependency(self.log_group)
