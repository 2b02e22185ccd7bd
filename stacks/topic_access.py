"""Letting an AWS service publish into an encrypted SNS topic: the topic policy and the key policy statements,
both under the same confused-deputy conditions (cost_budget.py: AWS Budgets; failed_jobs.py: EventBridge)."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns


def allow_service_to_publish(
    topic: sns.ITopic, key: kms.IKey, service: str, *, sid: str, conditions: dict[str, Any]
) -> None:
    """`service` (e.g. budgets.amazonaws.com) may publish to `topic` (statement `<sid>Publishes`) and use `key`
    for it (`<sid>Encrypts`), each only under `conditions` (aws:SourceAccount, aws:SourceArn)."""
    principal = iam.ServicePrincipal(service)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"{sid}Publishes",
            principals=[principal],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=conditions,
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"{sid}Encrypts",
            principals=[principal],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # a key policy's resource is the key itself
            conditions=conditions,
        )
    )
