"""The local DynamoDB (runs in .venv, inside the local S3 process, on its port): moto's DynamoDB app next to S3.

DynamoDB's protocol is a JSON POST to `/` with `X-Amz-Target: DynamoDB_20120810.<Action>`, which S3 never sends:
`DynamoDBRouter` hands those requests to moto's DynamoDB app and everything else to the S3 app. The functions
reach it through `AWS_ENDPOINT_URL_DYNAMODB` (= the S3 URL, local/up.py).

`create_idempotency_table(name)` creates the jobs function's idempotency table at start-up with the key schema and
TTL attribute of the Storage stack's table (stacks/constants.py). Items live in memory for the life of the process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from local.common import ACCOUNT, REGION

log = logging.getLogger("dynamodb")
TARGET_PREFIX = "DynamoDB_"


class DynamoDBRouter:
    """WSGI: DynamoDB JSON requests to moto's DynamoDB app, the rest to ``fallback`` (the S3 app)."""

    def __init__(self, fallback: Callable[..., Iterable[bytes]], dynamodb: Callable[..., Iterable[bytes]]) -> None:
        self.fallback = fallback
        self.dynamodb = dynamodb

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
            return self.dynamodb(environ, start_response)
        return self.fallback(environ, start_response)


def app(fallback: Callable[..., Iterable[bytes]]) -> DynamoDBRouter:
    from moto.moto_server.werkzeug_app import create_backend_app

    return DynamoDBRouter(fallback, create_backend_app("dynamodb"))


def create_idempotency_table(name: str) -> None:
    """The table as the Storage stack defines it: string partition key, on demand, TTL on the expiry attribute."""
    from moto.dynamodb.models import dynamodb_backends

    from stacks import constants as c

    backend = dynamodb_backends[ACCOUNT][REGION]
    backend.create_table(
        name,
        schema=[{"AttributeName": c.IDEMPOTENCY_PARTITION_KEY, "KeyType": "HASH"}],
        throughput=None,
        attr=[{"AttributeName": c.IDEMPOTENCY_PARTITION_KEY, "AttributeType": "S"}],
        global_indexes=None,
        indexes=None,
        streams=None,
        billing_mode="PAY_PER_REQUEST",
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    backend.update_time_to_live(name, {"AttributeName": c.IDEMPOTENCY_TTL_ATTRIBUTE, "Enabled": True})
    log.info("table %s created", name)
