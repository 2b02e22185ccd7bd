"""Alarms and dashboard rows of one model endpoint, in the metrics SageMaker publishes for its shape
(docs/operations.md, "Endpoint metrics", cites SageMaker's documentation):

- a classic variant: invocation metrics in AWS/SageMaker by EndpointName + VariantName, instance utilisation in
  /aws/sagemaker/Endpoints by the same dimensions;
- an inference component (dev's scale to zero): invocation metrics in AWS/SageMaker by InferenceComponentName
  (NoCapacityInvocationFailures among them), its utilisation in /aws/sagemaker/InferenceComponents by
  InferenceComponentName (normalised to the component's reserved share: 0-100 %), the host's reserved
  utilisation in /aws/sagemaker/Endpoints by EndpointName + VariantName.

Alarms have no action of their own: the critical ones (5XX, no capacity) feed the composite alarm of the
Monitoring stack, which pages. Missing data is decided per alarm (see each `treat_missing_data`)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stacks import constants as c
from stacks.config import AlarmsConfig, ModelConfig
from stacks.model_endpoint import VARIANT_NAME, invocation_dimensions

INVOCATIONS_NAMESPACE = "AWS/SageMaker"
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
COMPONENT_NAMESPACE = "/aws/sagemaker/InferenceComponents"
IDLE_PERIOD = cdk.Duration.minutes(5)


@dataclass(frozen=True)
class EndpointTarget:
    """One endpoint as the Monitoring stack sees it: literal names (no cross-stack export)."""

    role: str
    endpoint_name: str
    inference_component_name: str | None  # set when the endpoint scales to zero
    model: ModelConfig

    def invocation_dimensions(self) -> dict[str, str]:
        return invocation_dimensions(self.endpoint_name, self.inference_component_name)

    def variant_dimensions(self) -> dict[str, str]:
        return {"EndpointName": self.endpoint_name, "VariantName": VARIANT_NAME}


def invocation_metric(
    target: EndpointTarget, name: str, *, statistic: str, period: cdk.Duration | None = None
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=INVOCATIONS_NAMESPACE,
        metric_name=name,
        dimensions_map=target.invocation_dimensions(),
        statistic=statistic,
        period=period or cdk.Duration.minutes(1),
    )


def utilization_metric(
    target: EndpointTarget, name: str, *, statistic: str = "Average", period: cdk.Duration | None = None
) -> cloudwatch.Metric:
    """`GPUUtilization` of a variant's instances, or `GPUUtilizationNormalized` of an inference component."""
    if target.inference_component_name:
        namespace, metric_name = COMPONENT_NAMESPACE, f"{name}Normalized"
        dimensions = {"InferenceComponentName": target.inference_component_name}
    else:
        namespace, metric_name, dimensions = ENDPOINT_INSTANCE_NAMESPACE, name, target.variant_dimensions()
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=metric_name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period or cdk.Duration.minutes(1),
    )


def instances_metric(target: EndpointTarget, period: cdk.Duration | None = None) -> cloudwatch.Metric:
    """Instances running, counted as the instance-level samples a minute (one per instance): CPUUtilization of a
    variant, CPUReservedUtilization of an endpoint that hosts inference components."""
    return cloudwatch.Metric(
        namespace=ENDPOINT_INSTANCE_NAMESPACE,
        metric_name="CPUReservedUtilization" if target.inference_component_name else "CPUUtilization",
        dimensions_map=target.variant_dimensions(),
        statistic="SampleCount",
        period=period or cdk.Duration.minutes(1),
        label="instances",
    )


class EndpointAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target: EndpointTarget,
        thresholds: AlarmsConfig,
        alarm_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = f"{alarm_prefix}-{target.role.replace('_', '-')}"
        model = target.model
        name = target.inference_component_name or target.endpoint_name
        periods = thresholds.evaluation_minutes
        # Invocation metrics exist only while requests come in: no data is no errors, no latency.
        self.errors_5xx = self._alarm(
            "Errors5xx",
            invocation_metric(target, "Invocation5XXErrors", statistic="Sum"),
            threshold=thresholds.error_5xx_threshold,
            periods=periods,
            description=f"{name}: model returned 5XX errors",
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.critical: list[cloudwatch.Alarm] = [self.errors_5xx]
        self.context: list[cloudwatch.Alarm] = [
            self._alarm(
                "LatencyP90",
                # ModelLatency is in microseconds.
                invocation_metric(target, "ModelLatency", statistic="p90"),
                threshold=model.p90_latency_ms(thresholds) * 1000,
                periods=periods,
                description=f"{name}: p90 model latency above {model.p90_latency_ms(thresholds)} ms",
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        ]
        # Utilisation of a variant sums over the instance's devices (100 % per GPU or vCPU); an inference
        # component's is normalised to its reservation (0-100 %). No instance, no data: nothing is busy.
        component = target.inference_component_name is not None
        if model.gpu_count:
            self.context.append(
                self._alarm(
                    "GpuUtilization",
                    utilization_metric(target, "GPUUtilization"),
                    threshold=thresholds.gpu_utilization_percent * (1 if component else model.gpu_count),
                    periods=periods * 3,
                    description=f"{name}: GPUs busy above {thresholds.gpu_utilization_percent} % each",
                    missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        vcpus = model.instance.vcpus if model.instance else 1
        self.context.append(
            self._alarm(
                "CpuUtilization",
                utilization_metric(target, "CPUUtilization"),
                threshold=thresholds.cpu_utilization_percent * (1 if component else vcpus),
                periods=periods * 3,
                description=f"{name}: CPUs busy above {thresholds.cpu_utilization_percent} % each",
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        if component:
            # Requests refused because no instance serves the component. The first request after scaling to zero
            # is refused while an instance starts (the step-scaling policy reacts to the same metric), so only a
            # refusal that lasts longer than a cold start (4 x 5 min) alarms: no capacity or quota for the type.
            # The metric exists only while refusals happen: no data is no refusal.
            self.no_capacity = self._alarm(
                "NoCapacity",
                invocation_metric(target, "NoCapacityInvocationFailures", statistic="Sum", period=IDLE_PERIOD),
                threshold=thresholds.no_capacity_failures,
                periods=4,
                description=f"{name}: requests refused for 20 minutes for want of an instance "
                "(scale-out from zero failing: capacity or quota)",
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            )
            self.critical.append(self.no_capacity)
        if model.gpu_count:
            self.idle_gpu = self._idle_gpu_alarm(target, thresholds.idle_gpu_minutes, name)
            self.context.append(self.idle_gpu)

    @property
    def alarms(self) -> list[cloudwatch.Alarm]:
        return [*self.critical, *self.context]

    def _idle_gpu_alarm(self, target: EndpointTarget, minutes: int, name: str) -> cloudwatch.Alarm:
        """GPU instances running with zero invocations for `minutes`: an hourly GPU bill for nothing."""
        periods = max(1, minutes // 5)
        invocations = invocation_metric(target, "Invocations", statistic="Sum", period=IDLE_PERIOD)
        if target.inference_component_name:
            # Instances come and go with the component: idle only while an instance reports (samples > 0) and
            # invocations are zero. No data at all means no instance, so no cost: not breaching.
            expression = cloudwatch.MathExpression(
                expression="IF(FILL(instances, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)",
                using_metrics={"instances": instances_metric(target, IDLE_PERIOD), "invocations": invocations},
                period=IDLE_PERIOD,
                label="idle (1 = instances running, no invocations)",
            )
            missing = cloudwatch.TreatMissingData.NOT_BREACHING
        else:
            # A variant always runs min_instances >= 1, and SageMaker publishes Invocations only when requests
            # come in: no data is the idle case itself, so breaching.
            expression = cloudwatch.MathExpression(
                expression="IF(FILL(invocations, 0) == 0, 1, 0)",
                using_metrics={"invocations": invocations},
                period=IDLE_PERIOD,
                label="idle (1 = no invocations)",
            )
            missing = cloudwatch.TreatMissingData.BREACHING
        return self._alarm(
            "IdleGpu",
            expression,
            threshold=1,
            periods=periods,
            description=f"{name}: GPU instances running with zero invocations for {minutes} minutes",
            missing=missing,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int,
        description: str,
        missing: cloudwatch.TreatMissingData,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._prefix}-{c.alarm_name_suffix(construct_id)}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=description,
        )


def endpoint_widgets(target: EndpointTarget) -> list[cloudwatch.IWidget]:
    """One row per endpoint: invocations and errors, latency, utilisation, instances and scaling."""
    component = target.inference_component_name
    shape = f"inference component `{component}`" if component else f"variant `{VARIANT_NAME}`"
    scaling = target.model.scaling
    if component:
        per = "ConcurrentRequestsPerCopy" if scaling.metric == "concurrency" else "InvocationsPerCopy"
    else:
        per = "ConcurrentRequestsPerModel" if scaling.metric == "concurrency" else "InvocationsPerInstance"
    invocations = [
        invocation_metric(target, name, statistic="Sum")
        for name in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")
    ]
    if component:
        invocations.append(invocation_metric(target, "NoCapacityInvocationFailures", statistic="Sum"))
    utilization = [utilization_metric(target, "CPUUtilization")]
    if target.model.gpu_count:
        utilization += [
            utilization_metric(target, "GPUUtilization"),
            utilization_metric(target, "GPUMemoryUtilization"),
        ]
    return [
        cloudwatch.TextWidget(
            markdown=f"### {target.role}: endpoint `{target.endpoint_name}`, {shape}", width=24, height=1
        ),
        cloudwatch.GraphWidget(title="Invocations and errors", left=invocations, width=6),
        cloudwatch.GraphWidget(
            title="Model latency (µs)",
            left=[invocation_metric(target, "ModelLatency", statistic=stat) for stat in ("p50", "p90", "p99")],
            width=6,
        ),
        cloudwatch.GraphWidget(title="Utilisation (%)", left=utilization, width=6),
        cloudwatch.GraphWidget(
            title=f"Instances (min {target.model.min_instances}, max {target.model.max_instances}) and scaling",
            left=[instances_metric(target)],
            right=[invocation_metric(target, per, statistic="Average")],
            right_annotations=[cloudwatch.HorizontalAnnotation(value=scaling.target, label="scaling target")],
            width=6,
        ),
    ]
