"""Stateful storage of one environment: the data key, the artifacts and requests buckets, access logs, and the
idempotency table of POST /v1/jobs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import constants as c
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge
from stacks.secure_bucket import SecureBucket
from stacks.service_logs import removal_policy


class StorageStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = self._removal = removal_policy(config)
        self.key = kms.Key(
            self,
            c.ENCRYPTION_KEY_ID,
            description=f"{config.prefix}: model artifacts and request data",
            enable_key_rotation=True,
            pending_window=cdk.Duration.days(7 if removal == cdk.RemovalPolicy.DESTROY else 30),
            removal_policy=removal,
        )
        self.access_logs = self._build_access_logs(config, removal)
        old_versions = s3.LifecycleRule(
            id="ExpireOldVersions",
            noncurrent_version_expiration=cdk.Duration.days(config.storage.noncurrent_versions_expiry_days),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
        )
        self.artifacts = self._data_bucket(config, c.ARTIFACTS_BUCKET_ID, "artifacts", old_versions, versioned=True)
        # Requests are short-lived data, not records: they expire instead of being versioned.
        expiry = s3.LifecycleRule(
            id="ExpireRequests",
            expiration=cdk.Duration.days(config.storage.requests_expiry_days),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
        )
        self.requests = self._data_bucket(config, c.REQUESTS_BUCKET_ID, "requests", expiry, cors=self._cors(config))
        self.idempotency_table = self._build_idempotency_table(config, removal)
        cdk.CfnOutput(self, c.OUTPUT_ARTIFACTS_BUCKET, value=self.artifacts.bucket_name)
        cdk.CfnOutput(self, c.OUTPUT_REQUESTS_BUCKET, value=self.requests.bucket_name)
        cdk.CfnOutput(self, c.OUTPUT_IDEMPOTENCY_TABLE, value=self.idempotency_table.table_name)

    def _data_bucket(
        self,
        config: EnvironmentConfig,
        construct_id: str,
        name: str,
        lifecycle: s3.LifecycleRule,
        *,
        versioned: bool = False,
        cors: list[s3.CorsRule] | None = None,
    ) -> s3.Bucket:
        """`<prefix>-<name>-<account>-<region>`: encrypted with the data key, logged under `<name>/` in the access-log
        bucket."""
        return SecureBucket(
            self,
            construct_id,
            bucket_name=config.bucket_name(name, self.account),
            removal_policy=self._removal,
            encryption_key=self.key,
            access_logs=self.access_logs,
            access_logs_prefix=f"{name}/",
            versioned=versioned,
            lifecycle_rules=[lifecycle],
            cors=cors,
        ).bucket

    def _build_idempotency_table(self, config: EnvironmentConfig, removal: cdk.RemovalPolicy) -> dynamodb.Table:
        """Idempotency-Key records of POST /v1/jobs (Powertools' DynamoDB persistence layer): one item per key,
        deleted by TTL a day after it was written. On demand, encrypted with the environment's data key."""
        return dynamodb.Table(
            self,
            c.IDEMPOTENCY_TABLE_ID,
            table_name=c.idempotency_table_name(config.prefix),
            partition_key=dynamodb.Attribute(name=c.IDEMPOTENCY_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=c.IDEMPOTENCY_TTL_ATTRIBUTE,
            deletion_protection=removal == cdk.RemovalPolicy.RETAIN,
            removal_policy=removal,
        )

    def _build_access_logs(self, config: EnvironmentConfig, removal: cdk.RemovalPolicy) -> s3.IBucket:
        logs = SecureBucket(
            self,
            c.ACCESS_LOGS_BUCKET_ID,
            bucket_name=config.bucket_name("access-logs", self.account),
            removal_policy=removal,
            encryption_key=None,
            access_logs=None,
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireLogs", expiration=cdk.Duration.days(config.storage.access_logs_expiry_days))
            ],
        )
        acknowledge(
            logs.bucket,
            "AwsSolutions-S1",
            "This is the server access log bucket itself; logging it into itself would loop.",
        )
        return logs.bucket

    @staticmethod
    def _cors(config: EnvironmentConfig) -> list[s3.CorsRule] | None:
        # Browsers upload straight to S3 with the presigned POST from /v1/uploads.
        if not config.api.cors_origins:
            return None
        return [
            s3.CorsRule(
                allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET],
                allowed_origins=config.api.cors_origins,
                allowed_headers=["*"],
                max_age=3000,
            )
        ]
