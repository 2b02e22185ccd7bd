"""Alarms of one model endpoint: 5XX errors, p90 model latency, GPU (or CPU) utilisation, to the alarm topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import AlarmsConfig, ModelConfig
from stacks.model_endpoint import VARIANT_NAME


def endpoint_metric(
    endpoint_name: str, name: str, *, statistic: str, instance_level: bool = False
) -> cloudwatch.Metric:
    """A SageMaker endpoint metric: invocation metrics live in AWS/SageMaker, instance metrics in
    /aws/sagemaker/Endpoints."""
    return cloudwatch.Metric(
        namespace="/aws/sagemaker/Endpoints" if instance_level else "AWS/SageMaker",
        metric_name=name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT_NAME},
        statistic=statistic,
        period=cdk.Duration.minutes(1),
    )


class EndpointAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model: ModelConfig,
        thresholds: AlarmsConfig,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        periods = thresholds.evaluation_minutes
        self.alarms: list[cloudwatch.Alarm] = [
            self._alarm(
                "Errors5xx",
                endpoint_metric(endpoint_name, "Invocation5XXErrors", statistic="Sum"),
                threshold=thresholds.error_5xx_threshold,
                periods=periods,
                description=f"{endpoint_name}: model returned 5XX errors",
            ),
            self._alarm(
                "LatencyP90",
                # ModelLatency is in microseconds.
                endpoint_metric(endpoint_name, "ModelLatency", statistic="p90"),
                threshold=thresholds.latency_p90_ms * 1000,
                periods=periods,
                description=f"{endpoint_name}: p90 model latency above {thresholds.latency_p90_ms} ms",
            ),
        ]
        if model.gpu_count:
            # GPUUtilization sums over the instance's GPUs: 100 % per GPU.
            self.alarms.append(
                self._alarm(
                    "GpuUtilization",
                    endpoint_metric(endpoint_name, "GPUUtilization", statistic="Average", instance_level=True),
                    threshold=thresholds.gpu_utilization_percent * model.gpu_count,
                    periods=periods * 3,
                    description=f"{endpoint_name}: GPUs busy above {thresholds.gpu_utilization_percent} % each",
                )
            )
        self.alarms.append(
            self._alarm(
                "CpuUtilization",
                endpoint_metric(endpoint_name, "CPUUtilization", statistic="Average", instance_level=True),
                threshold=thresholds.cpu_utilization_percent * (model.instance.vcpus if model.instance else 1),
                periods=periods * 3,
                description=f"{endpoint_name}: CPUs busy above {thresholds.cpu_utilization_percent} % each",
            )
        )
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))

    def _alarm(
        self, construct_id: str, metric: cloudwatch.Metric, *, threshold: float, periods: int, description: str
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # An idle endpoint (or one scaled to zero) reports nothing: that is not an incident.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
