"""Alarms and the dashboard of one environment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks import constants as c
from stacks.config import EnvironmentConfig
from stacks.endpoint_alarms import EndpointAlarms, endpoint_metric


class MonitoringStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        endpoint_names: dict[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.topic = self._build_topic(config)
        for role, name in endpoint_names.items():
            EndpointAlarms(
                self,
                f"{c.model_construct_id(role)}Alarms",
                endpoint_name=name,
                model=getattr(config.models, role),
                thresholds=config.alarms,
                topic=self.topic,
            )
        self.dashboard = self._build_dashboard(config, endpoint_names)
        cdk.CfnOutput(self, c.OUTPUT_ALARM_TOPIC, value=self.topic.topic_arn)
        cdk.CfnOutput(self, c.OUTPUT_DASHBOARD, value=self.dashboard.dashboard_name)

    def _build_topic(self, config: EnvironmentConfig) -> sns.Topic:
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{config.prefix}: alarm notifications",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN if config.removal_policy == "retain" else cdk.RemovalPolicy.DESTROY,
        )
        # CloudWatch publishes alarm notifications into the encrypted topic.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")
        topic = sns.Topic(
            self, c.ALARM_TOPIC_ID, display_name=f"{config.prefix} alarms", master_key=key, enforce_ssl=True
        )
        for address in config.alarms.email_subscriptions:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def _build_dashboard(self, config: EnvironmentConfig, endpoint_names: dict[str, str]) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, c.DASHBOARD_ID, dashboard_name=f"{config.prefix}-service")
        for role, name in endpoint_names.items():
            dashboard.add_widgets(
                cloudwatch.TextWidget(markdown=f"### {role}: `{name}`", width=24, height=1),
                cloudwatch.GraphWidget(
                    title="Invocations and errors",
                    left=[
                        endpoint_metric(name, "Invocations", statistic="Sum"),
                        endpoint_metric(name, "Invocation4XXErrors", statistic="Sum"),
                        endpoint_metric(name, "Invocation5XXErrors", statistic="Sum"),
                    ],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title="Model latency (µs)",
                    left=[endpoint_metric(name, "ModelLatency", statistic=stat) for stat in ("p50", "p90", "p99")],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title="Utilisation (%)",
                    left=[
                        endpoint_metric(name, metric, statistic="Average", instance_level=True)
                        for metric in ("GPUUtilization", "GPUMemoryUtilization", "CPUUtilization")
                    ],
                    width=8,
                ),
            )
        return dashboard
