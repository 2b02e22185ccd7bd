"""Local mode's authentication (runs in .venv): what API Gateway checks before a method runs, on 127.0.0.1.

`--auth none` (the default) checks nothing. `--auth iam` checks AWS Signature Version 4 (service `execute-api`,
local mode's region) against the local credentials `make up` generates into .local/run/credentials.json: the
signature is recomputed with botocore's own SigV4 code (botocore.auth.SigV4Auth) over the request as received,
body hash included, and compared in constant time; the timestamp must be within 5 minutes of the clock. `--auth
api_key --api-keys FILE` requires an `x-api-key` header holding one of the keys in FILE (a JSON list).

A refusal is an `AuthError` carrying the gateway response type, status and message API Gateway uses, so the
local API answers with the same 403 body as the cloud (the project's gateway response templates). A success
gives the caller's identity, as API Gateway puts it into the proxy event's `requestContext.identity`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials as BotoCredentials

from local.common import ACCOUNT, REGION

MODES = ("none", "iam", "api_key")
SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
CLOCK_SKEW = timedelta(minutes=5)  # what AWS accepts between the signature's timestamp and its clock
LOCAL_USER = "vlp-local"
TIMESTAMP = "%Y%m%dT%H%M%SZ"

# API Gateway's own messages (the project's templates put them into {"error": {"code", "message", "request_id"}})
MISSING_TOKEN_MESSAGE = "Missing Authentication Token"  # noqa: S105 (a message, not a secret)
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."  # noqa: S105 (a message)
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)
FORBIDDEN = "Forbidden"

_AUTHORIZATION = re.compile(
    r"^(?P<algorithm>\S+)\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)


class AuthError(Exception):
    """A refused request: the gateway response `kind` (MISSING_AUTHENTICATION_TOKEN, INVALID_SIGNATURE, ...),
    its status, API Gateway's message and its `x-amzn-ErrorType` header."""

    def __init__(self, kind: str, message: str, error_type: str, status: int = 403) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.error_type = error_type
        self.status = status


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    region: str = REGION
    user_name: str = LOCAL_USER  # the IAM user these keys belong to (its ARN is the caller's identity)

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:user/{self.user_name}"

    @property
    def user_id(self) -> str:
        """The IAM user id (`caller`/`user` of the identity), stable per access key."""
        return "AIDA" + hashlib.sha256(self.access_key_id.encode()).hexdigest()[:17].upper()

    def as_json(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "region": self.region,
            "user_arn": self.user_arn,
        }


def generate_credentials(region: str = REGION) -> Credentials:
    """Fresh random credentials in AWS's shapes (a 20-character AKIA... id, a 40-character secret)."""
    upper = string.ascii_uppercase + "234567"
    access_key_id = "AKIA" + "".join(secrets.choice(upper) for _ in range(16))
    alphabet = string.ascii_letters + string.digits + "+/"
    secret = "".join(secrets.choice(alphabet) for _ in range(40))
    return Credentials(access_key_id, secret, region)


def write_credentials(path: Path, mode: str, credentials: Credentials | None, api_keys: list[str]) -> None:
    """.local/run/credentials.json: the auth mode and what a client needs for it (owner-only permissions)."""
    document: dict[str, Any] = {"auth": mode}
    if credentials is not None:
        document.update(credentials.as_json())
    if api_keys:
        document["api_keys"] = api_keys
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(json.dumps(document, indent=2))
    tmp.replace(path)


def read_credentials(path: Path) -> Credentials:
    document = json.loads(path.read_text())
    return Credentials(document["aws_access_key_id"], document["aws_secret_access_key"], document.get("region", REGION))


def read_identities(path: Path) -> list[Credentials]:
    """Every identity `--auth iam` accepts: the credentials of credentials.json, then its optional
    `additional_identities` (a list of {"aws_access_key_id", "aws_secret_access_key", "user_name"}): several IAM
    users, e.g. to check that callers are kept apart."""
    document = json.loads(path.read_text())
    identities = [read_credentials(path)]
    for item in document.get("additional_identities") or []:
        identities.append(
            Credentials(
                item["aws_access_key_id"],
                item["aws_secret_access_key"],
                item.get("region", document.get("region", REGION)),
                item.get("user_name", LOCAL_USER),
            )
        )
    return identities


def read_api_keys(path: Path) -> dict[str, str]:
    """FILE of `--api-keys`: a JSON list of keys (strings, or {"id", "value"} objects). Returns value -> key id."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(document, list) or not document:
        raise ValueError(f"{path}: expected a non-empty JSON list of API keys")
    keys: dict[str, str] = {}
    for item in document:
        if isinstance(item, str):
            value, key_id = item, "local" + hashlib.sha256(item.encode()).hexdigest()[:5]
        elif isinstance(item, dict) and isinstance(item.get("value"), str):
            value, key_id = (
                item["value"],
                str(item.get("id") or hashlib.sha256(item["value"].encode()).hexdigest()[:10]),
            )
        else:
            raise ValueError(f"{path}: each key is a string or an object with a string `value`, got {item!r}")
        if len(value) < 20:
            raise ValueError(f"{path}: API keys have at least 20 characters (API Gateway's minimum)")
        keys[value] = key_id
    return keys


def _header(headers: Mapping[str, str] | Any, name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else str(value)


class _Verifier(SigV4Auth):
    """botocore's SigV4 signer, over exactly the headers the caller signed (the signer itself would also drop
    its blacklist, e.g. user-agent, and add a host)."""

    def __init__(self, credentials: BotoCredentials, service: str, region: str, signed: list[str]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        selected = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                selected[name] = value
        return selected


class Authenticator:
    """Checks one request. `headers` is the request's message (http.server's, with get_all), `raw_path` the
    request target as received (path and query), `host` the Host header."""

    def __init__(
        self,
        mode: str = "none",
        *,
        credentials: Credentials | list[Credentials] | None = None,
        api_keys: dict[str, str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"auth mode {mode!r}: one of {', '.join(MODES)}")
        if mode == "iam" and not credentials:
            raise ValueError("--auth iam needs credentials")
        if mode == "api_key" and not api_keys:
            raise ValueError("--auth api_key needs --api-keys FILE")
        identities = credentials if isinstance(credentials, list) else [credentials] if credentials else []
        self.mode = mode
        self.credentials = identities[0] if identities else None
        self.identities = {identity.access_key_id: identity for identity in identities}
        self.api_keys = api_keys or {}

    def check(self, method: str, raw_path: str, headers: Any, body: bytes, now: datetime | None = None) -> dict:
        """The caller identity fields of requestContext.identity; AuthError when refused."""
        if self.mode == "none":
            return {}
        if self.mode == "api_key":
            return self._check_api_key(headers)
        return self._check_sigv4(method, raw_path, headers, body, now or datetime.now(UTC))

    def _check_api_key(self, headers: Any) -> dict:
        given = _header(headers, "x-api-key")
        for value, key_id in self.api_keys.items():
            if given is not None and hmac.compare_digest(given.encode(), value.encode()):
                return {"apiKey": value, "apiKeyId": key_id}
        # API Gateway: a missing or unknown key on a method that requires one is 403 {"message": "Forbidden"}
        raise AuthError("INVALID_API_KEY", FORBIDDEN, "ForbiddenException")

    def _check_sigv4(self, method: str, raw_path: str, headers: Any, body: bytes, now: datetime) -> dict:
        authorization = _header(headers, "Authorization")
        if not authorization:
            raise AuthError(
                "MISSING_AUTHENTICATION_TOKEN", MISSING_TOKEN_MESSAGE, "MissingAuthenticationTokenException"
            )
        parsed = _AUTHORIZATION.match(authorization)
        if parsed is None or parsed["algorithm"] != ALGORITHM:
            raise AuthError(
                "INVALID_SIGNATURE",
                f"Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters, with "
                f"the {ALGORITHM} algorithm. Authorization={authorization[:200]}",
                "IncompleteSignatureException",
            )
        scope = parsed["credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise AuthError(
                "INVALID_SIGNATURE",
                f"Credential should be <access key id>/<YYYYMMDD>/<region>/{SERVICE}/aws4_request, not "
                f"'{parsed['credential'][:200]}'.",
                "IncompleteSignatureException",
            )
        access_key, date, region, service, _ = scope
        credentials = self.identities.get(access_key)
        if credentials is None:
            raise AuthError("ACCESS_DENIED", INVALID_TOKEN_MESSAGE, "AccessDeniedException")
        if _header(headers, "X-Amz-Security-Token"):
            # the local credentials are long-term keys: a session token can only belong to other credentials
            raise AuthError("ACCESS_DENIED", INVALID_TOKEN_MESSAGE, "AccessDeniedException")
        if region != credentials.region:
            raise AuthError(
                "INVALID_SIGNATURE",
                f"Credential should be scoped to a valid region, not '{region}'. ",
                "InvalidSignatureException",
            )
        if service != SERVICE:
            raise AuthError(
                "INVALID_SIGNATURE",
                f"Credential should be scoped to correct service: '{SERVICE}'. ",
                "InvalidSignatureException",
            )
        timestamp = self._timestamp(headers)
        if timestamp.strftime("%Y%m%d") != date:
            raise AuthError(
                "INVALID_SIGNATURE",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{date}' != '{timestamp.strftime('%Y%m%d')}', from '{timestamp.strftime(TIMESTAMP)}'.",
                "InvalidSignatureException",
            )
        if timestamp < now - CLOCK_SKEW:
            raise AuthError(
                "INVALID_SIGNATURE",
                f"Signature expired: {timestamp.strftime(TIMESTAMP)} is now earlier than "
                f"{(now - CLOCK_SKEW).strftime(TIMESTAMP)} ({now.strftime(TIMESTAMP)} - 5 min.)",
                "InvalidSignatureException",
            )
        if timestamp > now + CLOCK_SKEW:
            raise AuthError(
                "INVALID_SIGNATURE",
                f"Signature not yet current: {timestamp.strftime(TIMESTAMP)} is still later than "
                f"{(now + CLOCK_SKEW).strftime(TIMESTAMP)} ({now.strftime(TIMESTAMP)} + 5 min.)",
                "InvalidSignatureException",
            )
        body_hash = hashlib.sha256(body).hexdigest()
        declared = _header(headers, "X-Amz-Content-SHA256")
        if declared is not None and declared != body_hash:
            # a signed payload hash that is not the body's: the body was altered after signing
            raise AuthError("INVALID_SIGNATURE", SIGNATURE_MISMATCH, "InvalidSignatureException")

        signed_names = [name.strip().lower() for name in parsed["signed"].split(";") if name.strip()]
        if "host" not in signed_names:
            raise AuthError(
                "INVALID_SIGNATURE",
                "'Host' must be a 'SignedHeader' in the AWS Authorization.",
                "InvalidSignatureException",
            )
        signed = HTTPHeaders()
        for name in signed_names:
            values = headers.get_all(name) if hasattr(headers, "get_all") else [headers.get(name)]
            for value in values or []:
                if value is not None:
                    signed[name] = value
        host = _header(headers, "Host") or ""
        request = AWSRequest(method=method, url=f"http://{host}{raw_path}", data=body)
        request.headers = signed
        request.context["timestamp"] = timestamp.strftime(TIMESTAMP)
        secret = BotoCredentials(credentials.access_key_id, credentials.secret_access_key)
        signer = _Verifier(secret, SERVICE, credentials.region, signed_names)
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected.encode(), parsed["signature"].lower().encode()):
            raise AuthError(
                "INVALID_SIGNATURE",
                f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
                f"The String-to-Sign should have been\n'{string_to_sign}'\n",
                "InvalidSignatureException",
            )
        user_id = credentials.user_id
        return {
            "caller": user_id,
            "user": user_id,
            "userArn": credentials.user_arn,
            "accountId": ACCOUNT,
            "accessKey": credentials.access_key_id,
        }

    @staticmethod
    def _timestamp(headers: Any) -> datetime:
        amz_date = _header(headers, "X-Amz-Date")
        try:
            if amz_date:
                return datetime.strptime(amz_date, TIMESTAMP).replace(tzinfo=UTC)
            date = _header(headers, "Date")
            if date:
                parsed = parsedate_to_datetime(date)  # "-0000" gives a naive datetime: UTC, not local time
                return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, TypeError):
            pass
        raise AuthError(
            "INVALID_SIGNATURE",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            "IncompleteSignatureException",
        )
