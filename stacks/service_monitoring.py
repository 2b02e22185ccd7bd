"""Alarms and dashboard sections of the request path through cdk-monitoring-constructs: the REST API (5XX rate,
p99 latency), both state machines (failed, timed-out, throttled executions), every Lambda function (errors,
throttles) and the web ACL (blocked requests), where config `api.waf` is on.

Alarms tagged CRITICAL feed the composite "service unhealthy" alarm (stacks/monitoring_stack.py); the rest are
context. None of them has an action of its own: only the composite pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_wafv2 as wafv2
from cdk_monitoring_constructs import (
    AlarmFactoryDefaults,
    DefaultDashboardFactory,
    ErrorCountThreshold,
    ErrorRateThreshold,
    LatencyThreshold,
    MonitoringFacade,
)
from constructs import Construct

from stacks import constants as c
from stacks.config import EnvironmentConfig

CRITICAL = "Critical"  # disambiguator of the alarms behind the composite
CONTEXT = "Context"
# Request-path metrics are sparse: a minute without requests publishes nothing, which is not an incident.
NOT_BREACHING = cloudwatch.TreatMissingData.NOT_BREACHING


def _at_least(count: int) -> ErrorCountThreshold:
    """An alarm at `count` or more a period (the construct alarms above its maximum); no data is no error."""
    return ErrorCountThreshold(max_error_count=count - 1, treat_missing_data_override=NOT_BREACHING)


@dataclass(frozen=True)
class ServiceTargets:
    """What the Monitoring stack watches, handed over by the stage (stacks/stage.py). Names rather than tokens
    where a token would become a cross-stack export: functions and state machines are imported by name."""

    rest_api: apigw.IRestApi  # its rest_api_name is a literal: no export
    stage_name: str
    function_names: Mapping[str, str]  # function (c.API_FUNCTIONS + c.STEP_FUNCTIONS) -> physical name
    express_state_machine: str
    standard_state_machine: str
    web_acl: wafv2.CfnWebACL | None  # its name is a literal: no export


class ServiceMonitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, targets: ServiceTargets
    ) -> None:
        super().__init__(scope, construct_id)
        thresholds = config.alarms
        periods = thresholds.evaluation_minutes
        self.dashboard_factory = DefaultDashboardFactory(
            self,
            "Dashboards",
            dashboard_name_prefix=f"{config.prefix}-service",
            create_dashboard=True,
            create_alarm_dashboard=False,
            create_summary_dashboard=False,
        )
        self.facade = MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=AlarmFactoryDefaults(
                alarm_name_prefix=config.prefix,
                actions_enabled=True,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
            ),
            dashboard_factory=self.dashboard_factory,
        )
        facade = self.facade
        facade.add_large_header(f"{config.prefix}: API")
        facade.monitor_api_gateway(
            api=targets.rest_api,
            api_stage=targets.stage_name,
            human_readable_name=f"REST API {targets.rest_api.rest_api_name} ({targets.stage_name})",
            alarm_friendly_name="Api",
            add5_xx_fault_rate_alarm={
                CRITICAL: ErrorRateThreshold(
                    max_error_rate=thresholds.api_5xx_rate_percent / 100, treat_missing_data_override=NOT_BREACHING
                )
            },
            add_latency_p99_alarm={
                CRITICAL: LatencyThreshold(
                    max_latency=cdk.Duration.millis(thresholds.api_latency_p99_ms),
                    treat_missing_data_override=NOT_BREACHING,
                )
            },
        )
        facade.add_large_header(f"{config.prefix}: state machines")
        for friendly, name in (("Pipeline", targets.express_state_machine), ("Jobs", targets.standard_state_machine)):
            failures = _at_least(thresholds.state_machine_failures)
            facade.monitor_step_function(
                state_machine=sfn.StateMachine.from_state_machine_name(self, f"{friendly}StateMachine", name),
                human_readable_name=f"State machine {name}",
                alarm_friendly_name=friendly,
                add_failed_execution_count_alarm={CRITICAL: failures},
                add_timed_out_execution_count_alarm={CRITICAL: failures},
                add_throttled_execution_count_alarm={CRITICAL: failures},
            )
        facade.add_large_header(f"{config.prefix}: Lambda functions")
        for name, function_name in targets.function_names.items():
            facade.monitor_lambda_function(
                lambda_function=lambda_.Function.from_function_name(self, c.function_construct_id(name), function_name),
                human_readable_name=f"Function {function_name}",
                alarm_friendly_name=c.function_construct_id(name),
                add_fault_count_alarm={CONTEXT: _at_least(thresholds.lambda_errors)},
                add_throttles_count_alarm={CONTEXT: _at_least(thresholds.lambda_throttles)},
            )
        if targets.web_acl is not None:
            facade.add_large_header(f"{config.prefix}: web ACL")
            facade.monitor_web_application_firewall_acl_v2(
                acl=targets.web_acl,
                region=config.region,
                human_readable_name=f"Web ACL {targets.web_acl.name}",
                alarm_friendly_name="WebAcl",
                add_blocked_requests_count_alarm={
                    CONTEXT: ErrorCountThreshold(
                        max_error_count=thresholds.waf_blocked_requests_per_5min,
                        period=cdk.Duration.minutes(5),
                        evaluation_periods=1,
                        datapoints_to_alarm=1,
                        treat_missing_data_override=NOT_BREACHING,
                    )
                },
            )

    @property
    def critical_alarms(self) -> list[cloudwatch.IAlarm]:
        return [alarm.alarm for alarm in self.facade.created_alarms_with_disambiguator(CRITICAL)]

    @property
    def dashboard(self) -> cloudwatch.Dashboard:
        dashboard = self.dashboard_factory.dashboard
        assert dashboard is not None  # create_dashboard=True
        return dashboard
