"""The customer-managed key of both state machines (Step Functions EncryptionConfiguration): their definitions and
every execution's input, state data and output (request text, transcripts, answers) are encrypted with it, not with
an AWS-owned key. Who may use it, each with the encryption context Step Functions sets
(`aws:states:stateMachineArn`): the machines' own roles (the CDK grant), and the functions that start executions or
read their output (analyze: StartSyncExecution; jobs: StartExecution, DescribeExecution). Nobody else in the
account reads execution data without a change to this key's policy; scheduling the key's deletion makes every
execution history unreadable (docs/security.md, "Execution data")."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import EnvironmentConfig

ENCRYPTION_CONTEXT_KEY = "kms:EncryptionContext:aws:states:stateMachineArn"
# Step Functions asks KMS for a new data key at most this often per machine (60-900 s; fewer KMS calls, same key).
DATA_KEY_REUSE = cdk.Duration.seconds(300)
# A caller encrypts the input it sends (StartExecution, StartSyncExecution) and decrypts what it reads back.
CALLER_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
LOG_DELIVERY_PRINCIPAL = "delivery.logs.amazonaws.com"


def state_machine_arn(stack: cdk.Stack, name: str) -> str:
    return stack.format_arn(
        service="states", resource="stateMachine", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )


class PipelineKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        retain = config.removal_policy == "retain"
        self.key = kms.Key(
            self,
            "Key",
            description=f"{config.prefix}: Step Functions definitions and execution data",
            enable_key_rotation=True,
            pending_window=cdk.Duration.days(30 if retain else 7),
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        )

    def encryption(self) -> sfn.EncryptionConfiguration:
        return sfn.CustomerManagedEncryptionConfiguration(self.key, DATA_KEY_REUSE)

    def scope_log_delivery(self) -> None:
        """CDK's StateMachine lets `delivery.logs.amazonaws.com` use the key (kms:Decrypt*, for the log delivery of
        an encrypted machine) without conditions; AWS's vended-logs key policy adds the confused-deputy guards,
        set here: this account's deliveries (aws:SourceAccount), from this account's log resources
        (aws:SourceArn). Call after the state machines exist."""
        stack = cdk.Stack.of(self)
        cfn_key = self.key.node.default_child
        assert isinstance(cfn_key, kms.CfnKey)
        document = stack.resolve(cfn_key.key_policy)
        statements = [
            index
            for index, statement in enumerate(document["Statement"])
            if statement.get("Principal", {}).get("Service") == LOG_DELIVERY_PRINCIPAL
        ]
        for index in statements:
            cfn_key.add_property_override(
                f"KeyPolicy.Statement.{index}.Condition",
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"},
                },
            )

    def grant_callers(self, machine_name: str, functions: Iterable[lambda_.Function]) -> None:
        """kms:Decrypt and kms:GenerateDataKey on this key, only for that machine's executions and only through
        Step Functions."""
        stack = cdk.Stack.of(self)
        statement = iam.PolicyStatement(
            actions=list(CALLER_ACTIONS),
            resources=[self.key.key_arn],
            conditions={
                "StringEquals": {
                    ENCRYPTION_CONTEXT_KEY: state_machine_arn(stack, machine_name),
                    "kms:ViaService": f"states.{stack.region}.amazonaws.com",
                }
            },
        )
        for function in functions:
            assert function.role is not None
            function.role.add_to_principal_policy(statement)
