"""Monitoring of one environment, wiring one construct per concern (docs/operations.md, "Monitoring"):

- ServiceMonitoring: API Gateway, state machines, Lambda functions and WAF, through cdk-monitoring-constructs;
- StepMetrics: the EMF metrics each pipeline step publishes;
- EndpointAlarms: each SageMaker endpoint (variant or inference component);
- the composite "service unhealthy" alarm over the critical ones: the only alarm with an action (the topic);
- FailedJobsRule: failed, timed-out and aborted jobs to the topic;
- CostBudget: the monthly budget, alerting to the topic;
- one dashboard: API, state machines, functions, pipeline steps, endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks import constants as c
from stacks.config import EnvironmentConfig
from stacks.cost_budget import CostBudget
from stacks.endpoint_alarms import EndpointAlarms, EndpointTarget, endpoint_widgets
from stacks.failed_jobs import FailedJobsRule
from stacks.service_logs import removal_policy
from stacks.service_monitoring import ServiceMonitoring, ServiceTargets
from stacks.step_metrics import StepMetrics


def service_alarm_name(config: EnvironmentConfig) -> str:
    return f"{config.prefix}-service-unhealthy"


class MonitoringStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        service: ServiceTargets,
        endpoints: Sequence[EndpointTarget],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key, self.topic = self._build_topic(config)
        self.service = ServiceMonitoring(self, c.SERVICE_MONITORING_ID, config=config, targets=service)
        self.steps = StepMetrics(self, c.STEP_METRICS_ID, config=config)
        self.endpoint_alarms = [
            EndpointAlarms(
                self,
                f"{c.model_construct_id(target.role)}Alarms",
                target=target,
                thresholds=config.alarms,
                alarm_prefix=config.prefix,
            )
            for target in endpoints
        ]
        critical: list[cloudwatch.IAlarm] = [*self.service.critical_alarms]
        for alarms in self.endpoint_alarms:
            critical += alarms.critical
        self.service_alarm = cloudwatch.CompositeAlarm(
            self,
            c.SERVICE_UNHEALTHY_ALARM_ID,
            composite_alarm_name=service_alarm_name(config),
            alarm_description=f"{config.prefix}: the service is failing callers (any critical alarm). "
            "Runbook: docs/operations.md",
            alarm_rule=cloudwatch.AlarmRule.any_of(*critical),
        )
        self.service_alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.service_alarm.add_ok_action(actions.SnsAction(self.topic))

        self.failed_jobs = FailedJobsRule(
            self,
            c.FAILED_JOBS_RULE_ID,
            state_machine_name=service.standard_state_machine,
            region=config.region,
            topic=self.topic,
            key=self.key,
            rule_name=f"{config.prefix}-failed-jobs",
        )
        self.budget = CostBudget(self, c.BUDGET_ID, config=config, topic=self.topic, key=self.key)

        self.dashboard = self.service.dashboard
        facade = self.service.facade
        for widget in StepMetrics.widgets(config):
            facade.add_widget(widget)
        facade.add_large_header(f"{config.prefix}: model endpoints")
        for target in endpoints:
            for widget in endpoint_widgets(target):
                facade.add_widget(widget)

        cdk.CfnOutput(self, c.OUTPUT_ALARM_TOPIC, value=self.topic.topic_arn)
        cdk.CfnOutput(self, c.OUTPUT_DASHBOARD, value=self.dashboard.dashboard_name)
        cdk.CfnOutput(self, c.OUTPUT_SERVICE_ALARM, value=service_alarm_name(config))
        cdk.CfnOutput(self, c.OUTPUT_BUDGET, value=self.budget.budget.ref)

    def _build_topic(self, config: EnvironmentConfig) -> tuple[kms.Key, sns.Topic]:
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{config.prefix}: alarm notifications",
            enable_key_rotation=True,
            removal_policy=removal_policy(config),
        )
        # CloudWatch publishes the composite alarm's notifications into the encrypted topic.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsEncrypt",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # a key policy's resource is the key itself
                # confused-deputy guards: this account's alarms only
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:*"
                    },
                },
            )
        )
        topic = sns.Topic(
            self, c.ALARM_TOPIC_ID, display_name=f"{config.prefix} alarms", master_key=key, enforce_ssl=True
        )
        for address in config.alarms.email_subscriptions:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return key, topic
