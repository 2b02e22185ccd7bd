"""One SageMaker model served from one endpoint: its execution role, model, endpoint config and endpoint.

Two shapes, chosen by config:
- a classic production variant (`min_instances >= 1`): the variant's instance count autoscales;
- `scaling.scale_to_zero`: an inference component on a variant with managed instance scaling, so the endpoint
  can sit at zero instances; the component's copy count autoscales and SageMaker adds or removes instances.

Updates are safe (docs/operations.md, "Safe endpoint updates"): each endpoint (or its inference component) carries
a DeploymentConfig (rolling, or blue/green with canary/linear/all-at-once traffic shifting) that rolls back on the
endpoint's own 5XX and latency alarms, defined here, in the same stack, under fixed names. Models whose weights
SageMaker fetches from S3 run network-isolated (TGI and Whisper by default, DJL roles from their staged bundle when
configured); an optional VPC (config `vpc`) holds the model containers.

The L1 resources are used because the alpha L2 (aws-sagemaker-alpha) cannot express uncompressed S3 model data,
start-up timeouts or inference components (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.config import AlarmsConfig, DeploymentConfig, ModelConfig, VpcConfig
from stacks.container_images import ModelImage
from stacks.model_secrets import grant_hub_token_read
from stacks.nag import acknowledge, acknowledge_wildcard_resources

VARIANT_NAME = "AllTraffic"


def invocation_dimensions(endpoint_name: str, inference_component_name: str | None) -> dict[str, str]:
    """Where SageMaker reports an endpoint's invocation metrics (AWS/SageMaker): by inference component when the
    endpoint hosts one, else by endpoint and variant."""
    if inference_component_name:
        return {"InferenceComponentName": inference_component_name}
    return {"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}


ROLLBACK_ALARM_SUFFIXES = ("rollback-5xx", "rollback-latency")  # <endpoint name>-<suffix>
# cdk-nag's reason for the execution role's wildcards; stacks/service_logs.py adds the component's log streams under
# the same reason (one role, one decision).
EXECUTION_ROLE_WILDCARD_REASON = (
    "Scoped to this endpoint's own weights prefix and log group; log stream names are instance ids known "
    "only at run time; ecr:GetAuthorizationToken supports no resource-level permission."
)


@dataclass(frozen=True)
class UpdatePolicy:
    """How the endpoint is updated and what rolls it back (from the environment's `deployment` block)."""

    strategy: str
    settings: DeploymentConfig
    alarms: AlarmsConfig


@dataclass(frozen=True)
class ModelData:
    """Where the container's /opt/ml/model comes from: an uncompressed S3 prefix of weights (TGI, Whisper),
    a model.tar.gz asset (DJL packages, whose weights come through option.model_id=s3://... instead), or a DJL
    role's uncompressed bundle prefix (package, vendor/ and weights/, stacks/model_bundle.py), which a
    network-isolated DJL role runs from. The role reads only the one prefix or object its model data names."""

    weights_prefix: str | None = None
    package: s3_assets.Asset | None = None
    bundle_prefix: str | None = None

    @property
    def s3_prefix(self) -> str | None:
        """The uncompressed prefix SageMaker copies into /opt/ml/model, if any (a bundle holds its own weights)."""
        return self.bundle_prefix or (None if self.package else self.weights_prefix)

    @property
    def read_prefix(self) -> str | None:
        """The prefix the execution role reads: the bundle, else the weights (which DJL fetches itself)."""
        return self.bundle_prefix or self.weights_prefix


class ModelEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model: ModelConfig,
        image: ModelImage,
        environment: dict[str, str],
        model_data: ModelData,
        artifacts: s3.IBucket,
        key: kms.IKey,
        update: UpdatePolicy,
        network_isolation: bool = False,
        vpc: VpcConfig | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.config = model
        self.scale_to_zero = model.scaling.scale_to_zero
        self.inference_component_name = f"{endpoint_name}-ic" if self.scale_to_zero else None
        self.update = update
        self.network_isolation = network_isolation
        self.vpc = vpc

        self.role = self._build_role(image, model_data, artifacts, key)
        grant_hub_token_read(self.role, environment)  # hub weights with a token: that one secret, read at start-up
        self.model = self._build_model(image, environment, model_data, artifacts)
        self.endpoint_config = self._build_endpoint_config(key)
        self.rollback_alarms = self._build_rollback_alarms()
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=None if self.scale_to_zero else self._endpoint_deployment_config(),
        )
        self.inference_component = self._build_inference_component() if self.scale_to_zero else None

    # ---- role ----
    def _build_role(self, image: ModelImage, model_data: ModelData, artifacts: s3.IBucket, key: kms.IKey) -> iam.Role:
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role of endpoint {self.endpoint_name}",
        )
        image.grant_pull(role)
        wildcards = ["*"]  # ecr:GetAuthorizationToken supports no resource-level permission
        if model_data.read_prefix:
            weights = artifacts.arn_for_objects(f"{model_data.read_prefix}*")
            wildcards.append(weights)
            role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[weights]))
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[artifacts.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{model_data.read_prefix}*"]}},
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
                )
            )
        if model_data.package and not model_data.bundle_prefix:
            package = model_data.package
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[package.bucket.arn_for_objects(package.s3_object_key)]
                )
            )
        log_group = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:"
            f"/aws/sagemaker/Endpoints/{self.endpoint_name}"
        )
        log_streams = f"{log_group}:log-stream:*"
        wildcards.append(log_streams)
        role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogGroup"], resources=[log_group]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[log_streams],
            )
        )
        if self.vpc:
            # What SageMaker needs to attach the containers to the subnets (the documented VpcConfig permissions);
            # the Describe/Create/Delete ENI actions support no resource-level scoping.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:CreateNetworkInterfacePermission",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DeleteNetworkInterfacePermission",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeVpcs",
                        "ec2:DescribeDhcpOptions",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeSecurityGroups",
                    ],
                    resources=["*"],
                )
            )
        acknowledge_wildcard_resources(role, wildcards, EXECUTION_ROLE_WILDCARD_REASON)
        return role

    # ---- model ----
    def _build_model(
        self, image: ModelImage, environment: dict[str, str], model_data: ModelData, artifacts: s3.IBucket
    ) -> sagemaker.CfnModel:
        container: dict = {"image": image.uri, "environment": environment}
        if model_data.package and not model_data.bundle_prefix:
            # ModelDataSource rather than ModelDataUrl: the asset key ends in ".gz", and ModelDataUrl expects ".tar.gz".
            container["model_data_source"] = sagemaker.CfnModel.ModelDataSourceProperty(
                s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                    s3_uri=model_data.package.s3_object_url, s3_data_type="S3Object", compression_type="Gzip"
                )
            )
        elif model_data.s3_prefix:
            # Uncompressed: SageMaker copies every object under the prefix to /opt/ml/model/<key less the prefix>.
            container["model_data_source"] = sagemaker.CfnModel.ModelDataSourceProperty(
                s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                    s3_uri=artifacts.s3_url_for_object(model_data.s3_prefix),
                    s3_data_type="S3Prefix",
                    compression_type="None",
                )
            )
        cfn_model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(**container),
            # No network for the container: SageMaker itself fetches the model data and the image.
            enable_network_isolation=True if self.network_isolation else None,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=self.vpc.subnet_ids, security_group_ids=self.vpc.security_group_ids
            )
            if self.vpc
            else None,
        )
        # SageMaker checks the role's access when the model is created: the policy must exist first.
        cfn_model.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        return cfn_model

    # ---- endpoint config ----
    def _build_endpoint_config(self, key: kms.IKey) -> sagemaker.CfnEndpointConfig:
        model = self.config
        variant: dict = {
            "variant_name": VARIANT_NAME,
            "instance_type": model.instance_type,
            "routing_config": sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                routing_strategy="LEAST_OUTSTANDING_REQUESTS"
            ),
        }
        if self.scale_to_zero:
            variant["initial_instance_count"] = 1
            variant["managed_instance_scaling"] = sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                status="ENABLED", min_instance_count=0, max_instance_count=model.max_instances
            )
        else:
            variant["initial_instance_count"] = model.min_instances
            variant["model_name"] = self.model.attr_model_name
            variant["container_startup_health_check_timeout_in_seconds"] = model.health_check_timeout_seconds
            variant["model_data_download_timeout_in_seconds"] = model.download_timeout_seconds
        if model.volume_size_gb:
            variant["volume_size_in_gb"] = model.volume_size_gb
        # Instances with local NVMe (g5, g6) refuse KmsKeyId: their instance storage is hardware-encrypted.
        local_nvme = model.instance is not None and model.instance.local_nvme
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(**variant)],
            kms_key_id=None if local_nvme else key.key_arn,
            execution_role_arn=self.role.role_arn if self.scale_to_zero else None,
        )
        if local_nvme:
            acknowledge(
                config,
                "AwsSolutions-SM2",
                f"{model.instance_type} has local NVMe instance storage, encrypted by the hardware; "
                "SageMaker rejects a KmsKeyId for such instances.",
            )
        return config

    # ---- inference component (scale to zero) ----
    def _build_inference_component(self) -> sagemaker.CfnInferenceComponent:
        model = self.config
        spec = model.instance
        requirements: dict = {
            # Leave a quarter of the host's memory to SageMaker's agents.
            "min_memory_required_in_mb": int(spec.memory_gib * 1024 * 0.75) if spec else 1024,
        }
        if model.gpu_count:
            requirements["number_of_accelerator_devices_required"] = model.gpu_count
        component = sagemaker.CfnInferenceComponent(
            self,
            "InferenceComponent",
            inference_component_name=self.inference_component_name,
            endpoint_name=self.endpoint.attr_endpoint_name,
            variant_name=VARIANT_NAME,
            specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                model_name=self.model.attr_model_name,
                compute_resource_requirements=sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                    **requirements
                ),
                startup_parameters=sagemaker.CfnInferenceComponent.InferenceComponentStartupParametersProperty(
                    container_startup_health_check_timeout_in_seconds=model.health_check_timeout_seconds,
                    model_data_download_timeout_in_seconds=model.download_timeout_seconds,
                ),
            ),
            runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(copy_count=1),
            deployment_config=self._component_deployment_config(),
        )
        return component

    # ---- safe updates ----
    def _build_rollback_alarms(self) -> list[cloudwatch.Alarm]:
        """The endpoint's 5XX and p90-latency alarms that a deployment watches while it shifts traffic. They live
        here, with fixed names, because the monitoring stack depends on this one (its alarms cannot be referenced
        from the endpoint without a cycle). Inference components report under InferenceComponentName."""
        thresholds = self.update.alarms
        dimensions = invocation_dimensions(self.endpoint_name, self.inference_component_name)
        periods = max(1, min(thresholds.evaluation_minutes, 3))  # a rollback should not wait long
        specs = [
            ("Invocation5XXErrors", "Sum", thresholds.error_5xx_threshold, "model returned 5XX errors"),
            # ModelLatency is in microseconds.
            (
                "ModelLatency",
                "p90",
                self.config.p90_latency_ms(thresholds) * 1000,
                f"p90 latency above {self.config.p90_latency_ms(thresholds)} ms",
            ),
        ]
        alarms = []
        for suffix, (metric_name, statistic, threshold, what) in zip(ROLLBACK_ALARM_SUFFIXES, specs, strict=True):
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    "".join(part.capitalize() for part in suffix.split("-")) + "Alarm",
                    alarm_name=f"{self.endpoint_name}-{suffix}",
                    alarm_description=f"{self.endpoint_name}: {what}; an endpoint update in progress rolls back",
                    metric=cloudwatch.Metric(
                        namespace="AWS/SageMaker",
                        metric_name=metric_name,
                        dimensions_map=dimensions,
                        statistic=statistic,
                        period=cdk.Duration.minutes(1),
                    ),
                    threshold=threshold,
                    evaluation_periods=periods,
                    datapoints_to_alarm=periods,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        return alarms

    def _endpoint_deployment_config(self) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        settings, strategy = self.update.settings, self.update.strategy
        rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in self.rollback_alarms]
        )
        timeout = settings.timeout_minutes * 60
        wait = settings.wait_minutes * 60
        if strategy == "rolling":
            return sagemaker.CfnEndpoint.DeploymentConfigProperty(
                auto_rollback_configuration=rollback,
                rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                    maximum_batch_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                        type="CAPACITY_PERCENT", value=settings.rolling_batch_percent
                    ),
                    rollback_maximum_batch_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                        type="CAPACITY_PERCENT", value=100
                    ),
                    wait_interval_in_seconds=wait,
                    maximum_execution_timeout_in_seconds=timeout,
                ),
            )
        routing: dict = {"type": strategy.upper()}
        if strategy == "canary":
            routing["canary_size"] = sagemaker.CfnEndpoint.CapacitySizeProperty(
                type="CAPACITY_PERCENT", value=settings.canary_percent
            )
            routing["wait_interval_in_seconds"] = wait
        elif strategy == "linear":
            routing["linear_step_size"] = sagemaker.CfnEndpoint.CapacitySizeProperty(
                type="CAPACITY_PERCENT", value=settings.linear_step_percent
            )
            routing["wait_interval_in_seconds"] = wait
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(**routing),
                termination_wait_in_seconds=settings.termination_wait_minutes * 60,
                maximum_execution_timeout_in_seconds=timeout,
            ),
        )

    def _component_deployment_config(
        self,
    ) -> sagemaker.CfnInferenceComponent.InferenceComponentDeploymentConfigProperty:
        # Inference components support rolling updates only (config validation refuses blue/green for them).
        settings = self.update.settings
        return sagemaker.CfnInferenceComponent.InferenceComponentDeploymentConfigProperty(
            auto_rollback_configuration=sagemaker.CfnInferenceComponent.AutoRollbackConfigurationProperty(
                alarms=[
                    sagemaker.CfnInferenceComponent.AlarmProperty(alarm_name=a.alarm_name) for a in self.rollback_alarms
                ]
            ),
            rolling_update_policy=sagemaker.CfnInferenceComponent.InferenceComponentRollingUpdatePolicyProperty(
                maximum_batch_size=sagemaker.CfnInferenceComponent.InferenceComponentCapacitySizeProperty(
                    type="CAPACITY_PERCENT", value=settings.rolling_batch_percent
                ),
                rollback_maximum_batch_size=sagemaker.CfnInferenceComponent.InferenceComponentCapacitySizeProperty(
                    type="CAPACITY_PERCENT", value=100
                ),
                wait_interval_in_seconds=settings.wait_minutes * 60,
                maximum_execution_timeout_in_seconds=settings.timeout_minutes * 60,
            ),
        )

    @property
    def scaling_resource_id(self) -> str:
        if self.scale_to_zero:
            return f"inference-component/{self.inference_component_name}"
        return f"endpoint/{self.endpoint_name}/variant/{VARIANT_NAME}"

    @property
    def scalable_dimension(self) -> str:
        if self.scale_to_zero:
            return "sagemaker:inference-component:DesiredCopyCount"
        return "sagemaker:variant:DesiredInstanceCount"
