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


def step_latency_threshold_ms(config: EnvironmentConfig, step: str) -> int:
    """The step's ModelLatency alarm: step_model_latency_p90_ms, or its role's own latency_p90_ms when higher."""
    role = SPECS[step].model_role
    own = getattr(config.models, role).latency_p90_ms if role is not None else None
    return max(config.alarms.step_model_latency_p90_ms, own or 0)


class StepMetrics(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        thresholds = config.alarms
        periods = thresholds.evaluation_minutes
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(
            step: str, metric: str, statistic: str, threshold: float, operator: cloudwatch.ComparisonOperator, what: str
        ) -> None:
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{c.function_construct_id(step)}{metric}",
                    alarm_name=f"{config.prefix}-step-{step}-{c.alarm_name_suffix(metric)}",
                    metric=step_metric(config, step, metric, statistic=statistic),
                    threshold=threshold,
                    comparison_operator=operator,
                    evaluation_periods=periods,
                    datapoints_to_alarm=periods,
                    # EMF publishes Errors only when one happens, ModelLatency only on a request: no data is a step
                    # without errors, an idle step is not slow.
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"Step {step}: {what}",
                )
            )

        for step in c.STEP_FUNCTIONS:
            alarm(
                step,
                "Errors",
                "Sum",
                thresholds.step_errors,
                cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                f"{thresholds.step_errors}+ errors a minute (EMF, after retries the state machine may still succeed)",
            )
        for step in model_steps():
            latency_ms = step_latency_threshold_ms(config, step)
            alarm(
                step,
                "ModelLatency",
                "p90",
                latency_ms,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                f"p90 of its SageMaker call above {latency_ms} ms",
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
