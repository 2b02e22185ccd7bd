"""AWS clients, created once per container (module level in the handlers), each with a botocore Config
suited to its service.

Clients come from a botocore session directly, not through boto3: the clients are the same objects, and
skipping ``import boto3`` (which pulls in s3transfer and the resource layer) saves a large part of the
cold start (bench/cold_start.py). Logic modules only call client methods, so they take either kind.

Retry policy:
- S3 and Step Functions: botocore "standard" mode (exponential backoff with jitter on throttling, 5xx and
  connection errors), 3 attempts in total.
- SageMaker runtime: ONE attempt. Model calls are retried by the state machine instead (Retry on the error
  names of vlp.errors), so a 60 s read timeout is never silently repeated inside one Lambda invocation, and
  every retry is visible in the execution history.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.config import Config
    from botocore.session import Session

_SESSION: Session | None = None


def session() -> Session:
    global _SESSION
    if _SESSION is None:
        import botocore.session

        from vlp.runtime import trace_botocore

        trace_botocore()
        _SESSION = botocore.session.get_session()
    return _SESSION


def _config(**kwargs: Any) -> Config:
    from botocore.config import Config

    return Config(tcp_keepalive=True, **kwargs)


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def s3_config() -> Config:
    return _config(
        connect_timeout=3,
        read_timeout=20,
        retries={"mode": "standard", "total_max_attempts": 3},
        # SigV4 is required for objects encrypted with a KMS key; virtual-hosted URLs are what S3 documents.
        signature_version="s3v4",
        s3={"addressing_style": "virtual"},
    )


def sagemaker_runtime_config(read_timeout: int) -> Config:
    return _config(
        connect_timeout=3,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=10,
    )


def stepfunctions_config(read_timeout: int = 10) -> Config:
    return _config(connect_timeout=3, read_timeout=read_timeout, retries={"mode": "standard", "total_max_attempts": 3})


def stepfunctions_sync_config() -> Config:
    # StartSyncExecution holds the connection for the whole Express execution (at most 5 minutes); one attempt,
    # so a slow execution is never started twice.
    return _config(connect_timeout=3, read_timeout=310, retries={"mode": "standard", "total_max_attempts": 1})


def s3_client() -> BaseClient:
    return session().create_client("s3", region_name=_region(), config=s3_config())


def sagemaker_runtime_client(read_timeout: int) -> BaseClient:
    return session().create_client(
        "sagemaker-runtime", region_name=_region(), config=sagemaker_runtime_config(read_timeout)
    )


def stepfunctions_client(*, sync: bool = False) -> BaseClient:
    config = stepfunctions_sync_config() if sync else stepfunctions_config()
    return session().create_client("stepfunctions", region_name=_region(), config=config)


def dynamodb_client() -> BaseClient:
    # The jobs function's Idempotency-Key records: a few item calls per request, "standard" retries like S3.
    config = _config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})
    return session().create_client("dynamodb", region_name=_region(), config=config)
