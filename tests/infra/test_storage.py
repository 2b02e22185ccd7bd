"""Buckets: encrypted, TLS-only, private, logged; versioned artifacts; expiring requests; retain in prod."""

from __future__ import annotations

import pytest

from stacks import constants as c


def _storage(assembly, env):
    return f"{env}/{c.STORAGE_STACK_ID}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_bucket_is_encrypted_private_and_tls_only(assembly, env):
    stack = _storage(assembly, env)
    buckets = assembly.resources(stack, "AWS::S3::Bucket")
    assert len(buckets) == 3
    policies = assembly.resources(stack, "AWS::S3::BucketPolicy")
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        algorithm = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        assert algorithm in ("aws:kms", "AES256")
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        policy = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": logical_id})
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in statements
        ), f"{logical_id} does not deny plain HTTP"
        assert any(
            s["Effect"] == "Deny" and "s3:TlsVersion" in s.get("Condition", {}).get("NumericLessThan", {})
            for s in statements
        ), f"{logical_id} does not enforce TLS 1.2"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_data_buckets_use_the_rotating_key_and_log_access(assembly, env, configs):
    stack = _storage(assembly, env)
    keys = assembly.resources(stack, "AWS::KMS::Key")
    assert len(keys) == 1
    ((key_id, key),) = keys.items()
    assert key["Properties"]["EnableKeyRotation"] is True
    buckets = assembly.resources(stack, "AWS::S3::Bucket")
    data_buckets = [b for b in buckets.values() if "KMSMasterKeyID" in str(b["Properties"]["BucketEncryption"])]
    assert len(data_buckets) == 2
    for bucket in data_buckets:
        rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert rule["BucketKeyEnabled"] is True
        assert "DestinationBucketName" in bucket["Properties"]["LoggingConfiguration"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_artifacts_versioned_and_requests_expire(assembly, env, configs):
    config = configs[env]
    buckets = assembly.resources(_storage(assembly, env), "AWS::S3::Bucket")
    by_name = {str(b["Properties"]["BucketName"]): b["Properties"] for b in buckets.values()}
    artifacts = next(p for n, p in by_name.items() if "-artifacts-" in n)
    requests = next(p for n, p in by_name.items() if "-requests-" in n)
    assert artifacts["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "VersioningConfiguration" not in requests
    expiry = [r["ExpirationInDays"] for r in requests["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert expiry == [config.storage.requests_expiry_days]


def test_removal_policy_follows_config(assembly, configs):
    for env, config in configs.items():
        expected = "Retain" if config.removal_policy == "retain" else "Delete"
        stack = _storage(assembly, env)
        for kind in ("AWS::S3::Bucket", "AWS::KMS::Key"):
            for resource in assembly.resources(stack, kind).values():
                assert resource["DeletionPolicy"] == expected, (env, kind)
    assert configs["prod"].removal_policy == "retain" and configs["dev"].removal_policy == "destroy"


def test_bucket_names_are_per_environment_account_and_region(assembly):
    names = [str(b["Properties"]["BucketName"]) for b in assembly.all_resources("AWS::S3::Bucket").values()]
    assert any("vlp-prod-artifacts-123456789012-us-east-1" in n for n in names)
    assert any("vlp-dev-requests-" in n and "AWS::AccountId" in n for n in names)  # environment-agnostic account
