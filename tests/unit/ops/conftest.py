"""Stubbed AWS clients for the operator commands: botocore's Stubber answers each call, nothing leaves the process."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from ops.preflight import API_TIMEOUT_QUOTA_NAME, Clients
from stacks.config import EnvironmentConfig, load_all

ACCOUNT = "123456789012"


@pytest.fixture
def configs():
    return {config.name: config for config in load_all()}


class Stubs:
    def __init__(self) -> None:
        def client(name: str):
            return boto3.client(
                name, region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="secret"
            )

        self.clients = Clients(
            sts=client("sts"),
            ssm=client("ssm"),
            quotas=client("service-quotas"),
            secrets=client("secretsmanager"),
            s3=client("s3"),
        )
        self.sts = Stubber(self.clients.sts)
        self.ssm = Stubber(self.clients.ssm)
        self.quotas = Stubber(self.clients.quotas)
        self.secrets = Stubber(self.clients.secrets)
        self.s3 = Stubber(self.clients.s3)
        self.all = [self.sts, self.ssm, self.quotas, self.secrets, self.s3]

    def identity(self, account: str = ACCOUNT) -> None:
        self.sts.add_response(
            "get_caller_identity",
            {"UserId": "AIDA", "Account": account, "Arn": f"arn:aws:iam::{account}:user/ops"},
        )

    def bootstrap(self, version: str = "21") -> None:
        self.ssm.add_response(
            "get_parameter",
            {"Parameter": {"Name": "/cdk-bootstrap/hnb659fds/version", "Type": "String", "Value": version}},
            {"Name": "/cdk-bootstrap/hnb659fds/version"},
        )

    def quota_lists(self, service: str, applied: dict[str, float], defaults: dict[str, float] | None = None) -> None:
        def page(values: dict[str, float]) -> dict:
            return {
                "Quotas": [
                    {"QuotaName": name, "Value": value, "QuotaCode": f"L-{abs(hash(name)) % 10**8:08d}"}
                    for name, value in values.items()
                ]
            }

        self.quotas.add_response("list_aws_default_service_quotas", page(defaults or {}), {"ServiceCode": service})
        self.quotas.add_response("list_service_quotas", page(applied), {"ServiceCode": service})

    def ready(self, config: EnvironmentConfig) -> None:
        """An account ready for `config`'s deploy: credentials, CDK bootstrap, endpoint quotas for twice each fleet
        (a blue/green update's headroom) and the longest API integration timeout the config allows."""
        fleet: dict[str, int] = {}
        for _role, model in config.models.enabled():
            fleet[model.instance_type] = fleet.get(model.instance_type, 0) + 2 * model.max_instances
        self.identity()
        self.bootstrap("21")
        self.quota_lists("sagemaker", {f"{t} for endpoint usage": n for t, n in fleet.items()})
        self.quota_lists("apigateway", {API_TIMEOUT_QUOTA_NAME: 300_000})

    def weights(self, bucket: str, prefixes: dict[str, int]) -> None:
        for prefix, count in prefixes.items():
            self.s3.add_response(
                "list_objects_v2", {"KeyCount": count}, {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1}
            )


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    stubs = Stubs()
    for stub in stubs.all:
        stub.activate()
    yield stubs
    for stub in stubs.all:
        stub.assert_no_pending_responses()
        stub.deactivate()
