"""The model endpoints of one environment: one ModelEndpoint + autoscaling per enabled model role."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import constants as c
from stacks.config import EnvironmentConfig, ModelConfig
from stacks.container_images import DJL_FRAMEWORK, TGI_FRAMEWORK, ModelImage, dlc_image, whisper_image
from stacks.endpoint_autoscaling import EndpointAutoscaling
from stacks.model_bundle import BUNDLE_MODEL_ID, role_bundle_prefix
from stacks.model_endpoint import ModelData, ModelEndpoint, UpdatePolicy
from stacks.model_environment import djl_environment, network_isolated, tgi_environment, whisper_environment
from stacks.model_package_asset import ModelPackageAsset
from stacks.restyle_access import grant_restyle_io


def endpoint_name(config: EnvironmentConfig, role: str) -> str:
    """Physical endpoint name, stable across deployments so clients and dashboards can name it: `vlp-dev-vlm`."""
    return f"{config.prefix}-{role.replace('_', '-')}"


class HostingStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        # By its deterministic name rather than a cross-stack reference: IAM resources stay literal ARNs.
        self._artifacts = s3.Bucket.from_bucket_name(self, "Artifacts", config.bucket_name("artifacts", self.account))
        self._key = key
        self._images: dict[tuple[str, str], ModelImage] = {}
        self.endpoints: dict[str, ModelEndpoint] = {}
        for role, model in config.models.enabled():
            endpoint = self._build_endpoint(role, model)
            if role == c.MODEL_RESTYLE:  # it reads its image and writes its PNG itself (stacks/restyle_access.py)
                requests = s3.Bucket.from_bucket_name(self, "Requests", config.bucket_name("requests", self.account))
                grant_restyle_io(endpoint.role, requests, key)
            EndpointAutoscaling(endpoint, "Autoscaling", endpoint=endpoint)
            self.endpoints[role] = endpoint
            cdk.CfnOutput(self, c.output_endpoint_name(role), value=endpoint.endpoint_name)

    def _build_endpoint(self, role: str, model: ModelConfig) -> ModelEndpoint:
        construct_id = c.model_construct_id(role)
        weights_prefix = model.weights.s3_prefix if model.weights else None
        if role in c.TGI_ROLES:
            image = self._dlc(TGI_FRAMEWORK, model.container_version)
            environment = tgi_environment(model)
            data = ModelData(weights_prefix=weights_prefix)
        elif role in c.DJL_ROLES:
            image = self._dlc(DJL_FRAMEWORK, model.container_version)
            if network_isolated(role, model):
                # The staged bundle (package, vendor/, weights/; make stage-weights), named by the package's hash.
                environment = djl_environment(model, weights_uri=BUNDLE_MODEL_ID)
                data = ModelData(bundle_prefix=role_bundle_prefix(role, model.container_version))
            else:
                package = ModelPackageAsset(self, f"{construct_id}Package", package=role).asset
                weights_uri = self._artifacts.s3_url_for_object(weights_prefix) if weights_prefix else None
                environment = djl_environment(model, weights_uri=weights_uri)
                data = ModelData(weights_prefix=weights_prefix, package=package)
        else:
            image = self._whisper()
            environment = whisper_environment(model)
            data = ModelData(weights_prefix=weights_prefix)
        return ModelEndpoint(
            self,
            construct_id,
            endpoint_name=endpoint_name(self._config, role),
            model=model,
            image=image,
            environment=environment,
            model_data=data,
            artifacts=self._artifacts,
            key=self._key,
            update=UpdatePolicy(self._config.deployment_strategy(model), self._config.deployment, self._config.alarms),
            network_isolation=network_isolated(role, model),
            vpc=self._config.vpc,
        )

    def _dlc(self, framework: str, version: str) -> ModelImage:
        # One imported repository per image, shared by the endpoints that run it.
        if (framework, version) not in self._images:
            construct_id = f"{framework}-{version}".replace(".", "-")
            self._images[(framework, version)] = dlc_image(
                self, construct_id, framework=framework, region=self._config.region, version=version
            )
        return self._images[(framework, version)]

    def _whisper(self) -> ModelImage:
        if ("whisper", "") not in self._images:
            self._images[("whisper", "")] = whisper_image(self, "WhisperImage")
        return self._images[("whisper", "")]
