"""The EMF metrics each pipeline step publishes (lambdas/vlp/runtime.py): `Errors`, `Retryable` and, for the steps
that call a model, `ModelLatency`, in the environment's namespace (`VLP/<env>`, set through
POWERTOOLS_METRICS_NAMESPACE) with the dimensions `service` and `Step`. Context alarms per step and a dashboard
row per step (latency, errors, retries)."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stacks import constants as c
from stacks.config import EnvironmentConfig
from stacks.pipeline_functions import SPECS


def step_metric(config: EnvironmentConfig, step: str, name: str, *, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=c.metrics_namespace(config.name),
        metric_name=name,
        dimensions_map={c.METRIC_SERVICE_DIMENSION: c.APP_NAME, c.METRIC_STEP_DIMENSION: step},
        statistic=statistic,
        period=cdk.Duration.minutes(1),
    )


def model_steps() -> list[str]:
    """The steps that call a SageMaker endpoint and so publish ModelLatency."""
    return [step for step in c.STEP_FUNCTIONS if SPECS[step].model_role is not None]


class StepMetrics(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        thresholds = config.alarms
        periods = thresholds.evaluation_minutes
        self.alarms: list[cloudwatch.Alarm] = []
        for step in c.STEP_FUNCTIONS:
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{c.function_construct_id(step)}Errors",
                    alarm_name=f"{config.prefix}-step-{step}-errors",
                    metric=step_metric(config, step, "Errors", statistic="Sum"),
                    threshold=thresholds.step_errors,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=periods,
                    datapoints_to_alarm=periods,
                    # EMF publishes Errors only when one happens: no data is a step without errors.
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"Step {step}: {thresholds.step_errors}+ errors a minute (EMF, after retries "
                    "the state machine may still succeed)",
                )
            )
        for step in model_steps():
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{c.function_construct_id(step)}ModelLatency",
                    alarm_name=f"{config.prefix}-step-{step}-model-latency",
                    metric=step_metric(config, step, "ModelLatency", statistic="p90"),
                    threshold=thresholds.step_model_latency_p90_ms,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=periods,
                    datapoints_to_alarm=periods,
                    # No request, no latency: an idle step is not slow.
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"Step {step}: p90 of its SageMaker call above "
                    f"{thresholds.step_model_latency_p90_ms} ms",
                )
            )

    @staticmethod
    def widgets(config: EnvironmentConfig) -> Sequence[cloudwatch.IWidget]:
        """One row per step: latency (and model latency), errors and retryable errors."""
        rows: list[cloudwatch.IWidget] = [
            cloudwatch.TextWidget(
                markdown=f"### Pipeline steps (EMF, namespace `{c.metrics_namespace(config.name)}`)",
                width=24,
                height=1,
            )
        ]
        for step in c.STEP_FUNCTIONS:
            latency = [step_metric(config, step, "Latency", statistic=stat) for stat in ("p50", "p99")]
            if step in model_steps():
                latency.append(step_metric(config, step, "ModelLatency", statistic="p90"))
            rows += [
                cloudwatch.GraphWidget(title=f"{step}: latency (ms)", left=latency, width=12, height=4),
                cloudwatch.GraphWidget(
                    title=f"{step}: errors and retries",
                    left=[
                        step_metric(config, step, name, statistic="Sum")
                        for name in ("Errors", "Retryable", "CallerErrors")
                    ],
                    width=12,
                    height=4,
                ),
            ]
        return rows
