"""`make preflight ENV=<env>`: is this account ready for a deploy of the environment? One row per check, with the fix
for each failing row; a failing blocker exits non-zero. Read-only: STS, SSM, Service Quotas, Secrets Manager, S3."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.common import Check, caller_identity
from stacks.config import EnvironmentConfig

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"  # the default qualifier's
MIN_BOOTSTRAP_VERSION = 6  # what the synthesized templates check (the BootstrapVersion rule of DefaultStackSynthesizer)
ENDPOINT_QUOTA_NAME = "{instance_type} for endpoint usage"  # Service Quotas, service code sagemaker
API_TIMEOUT_QUOTA_NAME = "Maximum integration timeout in milliseconds"  # service code apigateway
API_DEFAULT_TIMEOUT_MS = 29_000
# Roles whose weights live in S3 and the key prefixes each needs (model_packages/stage_weights.py's layout).
WeightsPlan = Callable[[EnvironmentConfig], dict[str, list[str]]]
# Network-isolated DJL roles and their bundle's manifest key, written last by staging (ops/bundles.py).
BundlesPlan = Callable[[EnvironmentConfig], dict[str, str]]


def weights_plan(config: EnvironmentConfig) -> dict[str, list[str]]:
    from model_packages.stage_weights import plan

    prefixes: dict[str, list[str]] = defaultdict(list)
    for upload in plan(config):
        prefixes[upload.role].append(upload.key_prefix)
    return dict(prefixes)


def bundles_plan(config: EnvironmentConfig) -> dict[str, str]:
    from ops.bundles import bundle_plan

    return {bundle.role: bundle.manifest_key for bundle in bundle_plan(config)}


@dataclass
class Clients:
    sts: Any
    ssm: Any
    quotas: Any
    secrets: Any
    s3: Any

    @classmethod
    def from_session(cls, session: Any) -> Clients:
        return cls(
            sts=session.client("sts"),
            ssm=session.client("ssm"),
            quotas=session.client("service-quotas"),
            secrets=session.client("secretsmanager"),
            s3=session.client("s3"),
        )


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(error).__name__))


def check_identity(config: EnvironmentConfig, clients: Clients) -> tuple[Check, str]:
    """Raises OpsError without credentials (one line); else the row and the account id."""
    identity = caller_identity(clients.sts)
    account = identity["Account"]
    if config.account and config.account != account:
        return (
            Check(
                "credentials",
                "fail",
                f"{identity['Arn']} is in account {account}; config/{config.name}.yaml deploys to {config.account}",
                f"use credentials of account {config.account} (AWS_PROFILE=...)",
            ),
            account,
        )
    return Check("credentials", "ok", f"{identity['Arn']} (account {account}, region {config.region})"), account


def check_bootstrap(config: EnvironmentConfig, clients: Clients, account: str) -> Check:
    from botocore.exceptions import ClientError

    fix = f"npx cdk bootstrap aws://{account}/{config.region}"
    try:
        value = clients.ssm.get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"]
    except ClientError as error:
        if _error_code(error) == "ParameterNotFound":
            return Check("cdk bootstrap", "fail", f"not bootstrapped ({BOOTSTRAP_VERSION_PARAMETER} missing)", fix)
        return Check("cdk bootstrap", "fail", f"cannot read {BOOTSTRAP_VERSION_PARAMETER}: {_error_code(error)}", fix)
    version = int(value) if value.isdigit() else 0
    if version < MIN_BOOTSTRAP_VERSION:
        return Check(
            "cdk bootstrap", "fail", f"CDKToolkit version {value}, needs {MIN_BOOTSTRAP_VERSION} or later", fix
        )
    return Check("cdk bootstrap", "ok", f"CDKToolkit version {version}")


def _quotas(client: Any, service_code: str) -> dict[str, tuple[float, str]]:
    """Quota name -> (applied value, quota code), applied values over AWS defaults."""
    found: dict[str, tuple[float, str]] = {}
    for operation in ("list_aws_default_service_quotas", "list_service_quotas"):
        for page in client.get_paginator(operation).paginate(ServiceCode=service_code):
            for quota in page["Quotas"]:
                found[quota["QuotaName"]] = (float(quota["Value"]), quota["QuotaCode"])
    return found


def endpoint_needs(config: EnvironmentConfig) -> dict[str, tuple[int, int]]:
    """Instance type -> (instances at every role's maximum, plus what updates add: a second fleet for blue/green,
    one batch for rolling), over the enabled roles."""
    needs: dict[str, tuple[int, int]] = {}
    for _role, model in config.models.enabled():
        strategy = config.deployment_strategy(model)
        base, extra = needs.get(model.instance_type, (0, 0))
        needs[model.instance_type] = (
            base + model.max_instances,
            extra + model.max_instances + config.deployment.headroom(strategy, model.max_instances),
        )
    return needs


def check_endpoint_quotas(config: EnvironmentConfig, clients: Clients) -> list[Check]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        quotas = _quotas(clients.quotas, "sagemaker")
    except (ClientError, BotoCoreError) as error:
        return [
            Check(
                "endpoint quotas",
                "warn",
                f"cannot read SageMaker quotas: {_error_code(error)}",
                "grant servicequotas:ListServiceQuotas and ListAWSDefaultServiceQuotas, or check them in the console",
                blocker=False,
            )
        ]
    rows = []
    for instance_type, (at_max, with_updates) in sorted(endpoint_needs(config).items()):
        name = ENDPOINT_QUOTA_NAME.format(instance_type=instance_type)
        if name not in quotas:
            rows.append(
                Check(f"quota {instance_type}", "warn", f"no quota named '{name}'", "check the region", blocker=False)
            )
            continue
        value, code = quotas[name]
        request = (
            f"aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code {code} "
            f"--desired-value {with_updates} --region {config.region}"
        )
        detail = f"quota {value:g}; max instances {at_max}, {with_updates} during updates"
        if value < at_max:
            rows.append(Check(f"quota {instance_type}", "fail", detail, request))
        elif value < with_updates:
            rows.append(
                Check(
                    f"quota {instance_type}",
                    "warn",
                    detail + ": an update of every endpoint at its maximum would fail",
                    request + " (or update one role at a time)",
                    blocker=False,
                )
            )
        else:
            rows.append(Check(f"quota {instance_type}", "ok", detail))
    return rows


def check_api_timeout(config: EnvironmentConfig, clients: Clients) -> Check:
    from botocore.exceptions import BotoCoreError, ClientError

    needed_ms = config.api.sync_timeout_seconds * 1000
    name = "api integration timeout"
    try:
        value, code = _quotas(clients.quotas, "apigateway").get(API_TIMEOUT_QUOTA_NAME, (API_DEFAULT_TIMEOUT_MS, ""))
    except (ClientError, BotoCoreError) as error:
        if needed_ms <= API_DEFAULT_TIMEOUT_MS:
            return Check(name, "ok", f"sync_timeout_seconds {config.api.sync_timeout_seconds} fits the default 29 s")
        return Check(
            name,
            "warn",
            f"cannot read the API Gateway quota ({_error_code(error)}); needs {needed_ms} ms",
            f"check '{API_TIMEOUT_QUOTA_NAME}' in Service Quotas",
            blocker=False,
        )
    detail = f"quota {value:g} ms; api.sync_timeout_seconds {config.api.sync_timeout_seconds} needs {needed_ms} ms"
    if value >= needed_ms:
        return Check(name, "ok", detail)
    return Check(
        name,
        "fail",
        detail,
        f"aws service-quotas request-service-quota-increase --service-code apigateway --quota-code {code or '<code>'} "
        f"--desired-value {needed_ms} --region {config.region} (or lower api.sync_timeout_seconds to 29)",
    )


def check_secrets(config: EnvironmentConfig, clients: Clients) -> list[Check]:
    from botocore.exceptions import ClientError

    rows = []
    for role, model in config.models.enabled():
        secret = model.weights.hub_token_secret if model.weights else None
        if not secret:
            continue
        try:
            clients.secrets.describe_secret(SecretId=secret)
        except ClientError as error:
            rows.append(
                Check(
                    f"secret {role}",
                    "fail",
                    f"{secret}: {_error_code(error)}",
                    f"aws secretsmanager create-secret --name {secret} --secret-string <hugging face token>",
                )
            )
        else:
            rows.append(Check(f"secret {role}", "ok", secret))
    return rows


def missing_weights(
    config: EnvironmentConfig, clients: Clients, account: str, plan: WeightsPlan = weights_plan
) -> tuple[str, dict[str, list[str]] | None]:
    """The artifacts bucket and, per role, the prefixes that hold no object; None when the bucket is missing."""
    from botocore.exceptions import ClientError

    bucket = config.bucket_name("artifacts", account)
    missing: dict[str, list[str]] = {}
    for role, prefixes in plan(config).items():
        for prefix in prefixes:
            try:
                listed = clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
            except ClientError as error:
                if _error_code(error) == "NoSuchBucket":
                    return bucket, None
                raise
            if not listed.get("KeyCount"):
                missing.setdefault(role, []).append(prefix)
    return bucket, missing


def check_weights(config: EnvironmentConfig, clients: Clients, account: str, plan: WeightsPlan = weights_plan) -> Check:
    bucket, missing = missing_weights(config, clients, account, plan)
    if missing is None:
        return Check(
            "weights",
            "fail",
            f"bucket {bucket} does not exist (the Storage stack is not deployed)",
            f"make deploy ENV={config.name} deploys it first, then checks the weights",
        )
    if missing:
        listed = "; ".join(f"{role}: {', '.join(prefixes)}" for role, prefixes in sorted(missing.items()))
        return Check(
            "weights",
            "fail",
            f"empty prefixes in {bucket}: {listed}",
            f"make stage-weights ENV={config.name} (needs internet; HF_TOKEN for gated models)",
        )
    return Check("weights", "ok", f"every role's prefix in {bucket} holds objects")


def missing_bundles(
    config: EnvironmentConfig, clients: Clients, account: str, plan: BundlesPlan = bundles_plan
) -> tuple[str, dict[str, str] | None]:
    """The artifacts bucket and, per isolated DJL role, the bundle prefix whose manifest is missing (never staged,
    or interrupted); None when the bucket is missing."""
    bucket, bundles = config.bucket_name("artifacts", account), plan(config)
    listed = missing_weights(config, clients, account, lambda _config: {r: [k] for r, k in bundles.items()})[1]
    if listed is None:
        return bucket, None
    return bucket, {role: bundles[role].rsplit("/", 1)[0] + "/" for role in listed}


def check_bundles(
    config: EnvironmentConfig, clients: Clients, account: str, plan: BundlesPlan = bundles_plan
) -> list[Check]:
    """One row per network-isolated DJL role: its bundle (package, vendor/, weights/) is staged under the prefix
    the synthesized Model reads, bundles/<role>/<hash of model_packages/<role>>/."""
    bundles = plan(config)  # hashes the packages once
    if not bundles:
        return []
    bucket, missing = missing_bundles(config, clients, account, lambda _config: bundles)
    if missing is None:
        return []  # the weights row already says the bucket (the Storage stack) is missing
    rows = []
    for role, key in sorted(bundles.items()):
        prefix = key.rsplit("/", 1)[0] + "/"
        if role in missing:
            rows.append(
                Check(
                    f"bundle {role}",
                    "fail",
                    f"no complete bundle at s3://{bucket}/{prefix} (the package as it is now; network-isolated)",
                    f"make packages && make stage-weights ENV={config.name} ROLE={role}",
                )
            )
        else:
            rows.append(Check(f"bundle {role}", "ok", f"s3://{bucket}/{prefix}"))
    return rows


def run_checks(
    config: EnvironmentConfig,
    clients: Clients,
    *,
    weights: bool = True,
    plan: WeightsPlan = weights_plan,
    bundles: BundlesPlan = bundles_plan,
) -> list[Check]:
    """Every check in order; raises OpsError (one line) when there are no usable credentials."""
    return checks_and_account(config, clients, weights=weights, plan=plan, bundles=bundles)[0]


def checks_and_account(
    config: EnvironmentConfig,
    clients: Clients,
    *,
    weights: bool = True,
    plan: WeightsPlan = weights_plan,
    bundles: BundlesPlan = bundles_plan,
) -> tuple[list[Check], str]:
    """run_checks' rows and the caller's account id (from the same GetCallerIdentity call)."""
    identity, account = check_identity(config, clients)
    rows = [identity, check_bootstrap(config, clients, account)]
    rows += check_endpoint_quotas(config, clients)
    rows.append(check_api_timeout(config, clients))
    rows += check_secrets(config, clients)
    if weights:
        rows.append(check_weights(config, clients, account, plan))
        rows += check_bundles(config, clients, account, bundles)
    return rows, account


def blockers(rows: list[Check]) -> list[Check]:
    return [row for row in rows if row.status == "fail" and row.blocker]
