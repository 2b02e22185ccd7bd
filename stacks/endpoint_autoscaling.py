"""Autoscaling of one model endpoint: a scalable target and a target-tracking policy, plus, for endpoints that
scale to zero, a step policy that adds the first copy when a request finds no capacity (target tracking alone
never scales out from zero: with no copy there is no per-copy metric)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.model_endpoint import ModelEndpoint

_PREDEFINED = {
    (False, "invocations"): appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
    (False, "concurrency"): appscaling.PredefinedMetric.SAGEMAKER_VARIANT_CONCURRENT_REQUESTS_PER_MODEL_HIGH_RESOLUTION,
    (True, "invocations"): appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
    (
        True,
        "concurrency",
    ): appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_CONCURRENT_REQUESTS_PER_COPY_HIGH_RESOLUTION,
}


class EndpointAutoscaling(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, endpoint: ModelEndpoint) -> None:
        super().__init__(scope, construct_id)
        model = endpoint.config
        scaling = model.scaling
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=endpoint.scaling_resource_id,
            scalable_dimension=endpoint.scalable_dimension,
            min_capacity=model.min_instances,
            max_capacity=model.max_instances,
            role=self._service_linked_role(),
        )
        # The variant or component must exist before it can be registered.
        self.target.node.add_dependency(endpoint.inference_component or endpoint.endpoint)
        self.tracking = self.target.scale_to_track_metric(
            "TargetTracking",
            target_value=scaling.target,
            predefined_metric=_PREDEFINED[(endpoint.scale_to_zero, scaling.metric)],
            scale_in_cooldown=cdk.Duration.seconds(scaling.scale_in_cooldown_seconds),
            scale_out_cooldown=cdk.Duration.seconds(scaling.scale_out_cooldown_seconds),
        )
        self.from_zero = self._build_scale_from_zero(endpoint) if endpoint.scale_to_zero else None

    def _service_linked_role(self) -> iam.IRole:
        # Application Auto Scaling acts on SageMaker through its service-linked role (created by AWS on first use);
        # naming it keeps the L2 from creating an empty role of its own.
        stack = cdk.Stack.of(self)
        return iam.Role.from_role_arn(
            self,
            "ServiceLinkedRole",
            f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            mutable=False,
        )

    def _build_scale_from_zero(self, endpoint: ModelEndpoint) -> appscaling.StepScalingPolicy:
        assert endpoint.inference_component_name is not None  # endpoints that scale to zero serve a component
        no_capacity = cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="NoCapacityInvocationFailures",
            dimensions_map={"InferenceComponentName": endpoint.inference_component_name},
            statistic="Maximum",
            period=cdk.Duration.minutes(1),
        )
        return self.target.scale_on_metric(
            "ScaleFromZero",
            metric=no_capacity,
            # A change of 0 below the threshold makes the L2 create the scale-out alarm only.
            scaling_steps=[
                appscaling.ScalingInterval(upper=0, change=0),
                appscaling.ScalingInterval(lower=1, change=1),
            ],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=cdk.Duration.minutes(1),
            evaluation_periods=1,
            datapoints_to_alarm=1,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
