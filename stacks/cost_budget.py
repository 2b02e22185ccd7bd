"""An AWS Budgets budget per environment (config `budget.monthly_usd`): monthly cost, filtered by the
environment's `environment` tag when it has one (a cost allocation tag to activate once in the Billing console),
alerting at 80 % and 100 % of actual spend to the alarm topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.topic_access import allow_service_to_publish

ALERT_PERCENTAGES = (80, 100)
TAG_KEY = "environment"


def budget_name(config: EnvironmentConfig) -> str:
    return f"{config.prefix}-monthly"


class CostBudget(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, topic: sns.ITopic, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        name = budget_name(config)
        tag = config.tags.get(TAG_KEY)
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=config.budget.monthly_usd, unit="USD"),
                # Cost Explorer's tag filter form: user:<key>$<value>.
                cost_filters={"TagKeyValue": [f"user:{TAG_KEY}${tag}"]} if tag else None,
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type="ACTUAL",
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)
                    ],
                )
                for percent in ALERT_PERCENTAGES
            ],
        )
        budget_arn = f"arn:{stack.partition}:budgets::{stack.account}:budget/{name}"
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": budget_arn},
        }
        allow_service_to_publish(topic, key, "budgets.amazonaws.com", sid="Budget", conditions=conditions)
        # Budgets checks that it may publish when the budget is created: the topic policy comes first.
        policy = topic.node.try_find_child("Policy")
        if policy is not None:
            self.budget.node.add_dependency(policy)
