"""An S3 bucket with the settings every bucket of ours shares: encrypted, TLS-only, private, logged."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class SecureBucket(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str,
        removal_policy: cdk.RemovalPolicy,
        encryption_key: kms.IKey | None,
        access_logs: s3.IBucket | None,
        access_logs_prefix: str = "",
        versioned: bool = False,
        lifecycle_rules: list[s3.LifecycleRule] | None = None,
        cors: list[s3.CorsRule] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            # S3 server access logs can only be delivered to an SSE-S3 bucket, so the log bucket itself uses S3 keys.
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            bucket_key_enabled=encryption_key is not None,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=access_logs_prefix or None,
            lifecycle_rules=lifecycle_rules,
            cors=cors,
            removal_policy=removal_policy,
        )
