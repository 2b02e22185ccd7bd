"""``Idempotency-Key`` on POST /v1/jobs, with Powertools' Idempotency utility and its DynamoDB persistence layer.

- The key (1..128 printable ASCII characters, no leading or trailing space) is scoped per caller: the record's
  key is a SHA-256 of ``[caller, key]``, where the caller is the event's identity (Cognito ``sub``, the IAM
  principal, the API key id), so two callers' keys never collide. Without an identity (local mode without auth)
  every key shares one scope.
- The record remembers a SHA-256 of the validated request (``payload_validation_jmespath``): the same key and an
  equivalent body within 24 hours (``EXPIRES_AFTER_SECONDS``) return the first job; another body raises
  Powertools' ``IdempotencyValidationError``, mapped to ``409 IDEMPOTENCY_KEY_REUSED`` by ``vlp.errors``.
- Without the header nothing is recorded: every POST starts a new job.
- When starting the execution fails, Powertools deletes the in-progress record, so a retry with the same key
  starts the job then.

Powertools' persistence layer imports boto3; it is built at the first request that carries a key, so requests
without one never pay for the import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vlp.errors import CallerError, library_error

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from vlp.http import ApiEvent

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 128
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$"
_KEY_RE = re.compile(KEY_PATTERN)
EXPIRES_AFTER_SECONDS = 24 * 60 * 60
RECORD_PREFIX = "vlp-jobs"  # the records' key is "<prefix>#<sha256>": stable across function renames
_ASSUMED_ROLE_SESSION = re.compile(r"^(arn:[^:]+:sts::\d{12}:assumed-role/[^/]+)/.+$")
_SSO_ROLE_SESSION = re.compile(r"^arn:[^:]+:sts::\d{12}:assumed-role/AWSReservedSSO_[^/]+/.+$")


def idempotency_key(event: ApiEvent) -> str | None:
    """The request's Idempotency-Key header, validated; None when absent."""
    value = event.header(HEADER)
    if value is None:
        return None
    if not _KEY_RE.match(value):
        shown = value[:40] + ("..." if len(value) > 40 else "")
        raise CallerError(
            f"{HEADER} must be 1..{MAX_KEY_CHARS} printable ASCII characters without leading or trailing spaces "
            f"(got {len(value)} characters: {shown!r}).",
            code="INVALID_IDEMPOTENCY_KEY",
        )
    return value


def caller_scope(event: ApiEvent) -> str:
    """Who is calling, from the event's identity: ``sub:<cognito sub>``, ``principal:<IAM principal>``,
    ``api_key:<id>`` (those present, joined by ``|``), or ``anonymous``.

    An assumed role's ARN loses its session name (``.../assumed-role/<role>/<session>`` -> ``.../<role>``):
    SDKs name a refreshed session anew, and a retry after a credential refresh must find its first job. Except where
    the session name is the person: IAM Identity Center roles (``AWSReservedSSO_*``, one role per permission set,
    shared by everyone given it) keep it, and Cognito identity-pool callers (one role for every user) are told apart
    by ``cognito_identity:<id>``."""
    context = event.requestContext
    identity = context.identity or {}
    authorizer = context.authorizer or {}
    claims = authorizer.get("claims") or (authorizer.get("jwt") or {}).get("claims") or {}
    iam = authorizer.get("iam") or {}
    parts = []
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if isinstance(sub, str) and sub:
        parts.append(f"sub:{sub}")
    principal = identity.get("userArn") or iam.get("userArn")
    if isinstance(principal, str) and principal:
        if _SSO_ROLE_SESSION.match(principal) is None:
            principal = _ASSUMED_ROLE_SESSION.sub(r"\1", principal)
        parts.append(f"principal:{principal}")
    cognito_identity = identity.get("cognitoIdentityId")
    if isinstance(cognito_identity, str) and cognito_identity:
        parts.append(f"cognito_identity:{cognito_identity}")
    api_key = identity.get("apiKeyId")
    if isinstance(api_key, str) and api_key:
        parts.append(f"api_key:{api_key}")
    return "|".join(parts) or "anonymous"


def caller_prefix_of(event: ApiEvent, salt: str) -> str:
    """The caller's S3 key prefix (vlp.keys.caller_prefix over ``caller_scope``): who owns uploads, inputs,
    results and jobs."""
    from vlp.keys import caller_prefix

    return caller_prefix(caller_scope(event), salt)


class IdempotentJobs:
    """``submit`` runs ``start`` at most once per (caller, key) and request body within 24 hours."""

    def __init__(self, table_name: str, client_factory: Callable[[], Any]) -> None:
        self.table_name = table_name
        self._client_factory = client_factory
        self._config: Any = None
        self._run: Callable[..., dict[str, Any]] | None = None

    def _build(self) -> Callable[..., dict[str, Any]]:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        persistence = DynamoDBPersistenceLayer(table_name=self.table_name, boto3_client=self._client_factory())
        self._config = IdempotencyConfig(
            event_key_jmespath="[caller, key]",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=EXPIRES_AFTER_SECONDS,
            hash_function="sha256",
            response_hook=_replayed,
        )

        @idempotent_function(
            data_keyword_argument="submission",
            persistence_store=persistence,
            config=self._config,
            key_prefix=RECORD_PREFIX,
        )
        def run(*, submission: dict[str, Any], start: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return start()

        return run

    def submit(
        self,
        *,
        caller: str,
        key: str,
        request: dict[str, Any],
        start: Callable[[], dict[str, Any]],
        lambda_context: Any = None,
    ) -> tuple[dict[str, Any], bool]:
        """(what ``start`` returned, now or the first time; whether it was a replay of an earlier request)."""
        if self._run is None:
            self._run = self._build()
        if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
            # an in-progress record expires with this invocation, so a crashed one does not block the key
            self._config.register_lambda_context(lambda_context)
        submission = {"caller": caller, "key": key, "request": request}
        try:
            result = self._run(submission=submission, start=start)
        except Exception as exc:
            mapped = library_error(exc)
            if mapped is None:
                raise
            raise mapped from None
        replayed = bool(result.pop(_REPLAYED, False))
        return result, replayed


_REPLAYED = "__replayed"


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools' response hook: runs only when the response comes from an earlier request's record."""
    return {**response, _REPLAYED: True} if isinstance(response, dict) else response
