"""The local S3 (runs in .venv): moto's S3 server, with what moto leaves out of browser-style uploads added in front.

moto stores a presigned-POST upload without looking at its policy. S3 does not: the policy pins the key, the
Content-Type and the size, and a form that breaks it is refused. The middleware here checks a POST form upload the
way S3 does before handing it to moto as a PutObject:

- SigV4 signature of the policy (the local dummy secret key), expiration;
- every condition (exact matches, `starts-with`, `content-length-range`) and every form field covered by one;
- answers like S3: 403 AccessDenied "Invalid according to Policy: ...", 403 SignatureDoesNotMatch,
  400 EntityTooLarge / EntityTooSmall (XML error bodies), 204 on success.

Presigned GET/PUT URLs past their X-Amz-Expires are refused (403 AccessDenied, "Request has expired").
The buckets are created at start-up. Objects live in memory for the life of the process. The same port also
serves the local DynamoDB (local/dynamodb.py: the idempotency table of `--dynamodb-table`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote
from xml.sax.saxutils import escape

from local.common import ACCOUNT, REGION, SECRET_KEY, ServiceError, die_with_parent, setup_logging

log = logging.getLogger("s3")
IGNORED_FIELDS = ("x-amz-signature", "file", "policy")


def _xml_error(code: str, message: str, **extra: Any) -> bytes:
    items = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in extra.items())
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
        f"{items}<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId><HostId>local</HostId></Error>"
    ).encode()


class PolicyError(ServiceError):
    """A POST upload the signed policy does not allow (rendered as S3's XML error)."""


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_post_policy(bucket: str, fields: dict[str, str], size: int, secret: str, now: float | None = None) -> None:
    """Raise PolicyError unless the form (lower-cased field names) is allowed by its signed policy."""
    policy_b64 = fields.get("policy")
    if not policy_b64:
        raise PolicyError("AccessDenied", 403, "Access Denied")
    credential = fields.get("x-amz-credential", "")
    signature = fields.get("x-amz-signature", "")
    if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or credential.count("/") != 4:
        raise PolicyError(
            "InvalidArgument",
            400,
            "POST requires AWS4-HMAC-SHA256 with x-amz-credential",
            ArgumentName="x-amz-algorithm",
        )
    _, date, region, service, _ = credential.split("/")
    expected = hmac.new(_signing_key(secret, date, region, service), policy_b64.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise PolicyError(
            "SignatureDoesNotMatch",
            403,
            "The request signature we calculated does not match the signature you provided. Check your "
            "key and signing method.",
        )
    try:
        policy = json.loads(base64.b64decode(policy_b64))
    except ValueError:
        raise PolicyError("InvalidPolicyDocument", 400, "Invalid Policy: Invalid JSON.") from None
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if expiration.timestamp() < (time.time() if now is None else now):
        raise PolicyError("AccessDenied", 403, "Invalid according to Policy: Policy expired.")
    values = dict(fields, bucket=bucket)
    covered = {"bucket"}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            ((name, wanted),) = condition.items()
            name = name.lower()
            covered.add(name)
            if values.get(name) != wanted:
                raise PolicyError(
                    "AccessDenied",
                    403,
                    f'Invalid according to Policy: Policy Condition failed: ["eq", "${name}", "{wanted}"]',
                )
            continue
        operator = str(condition[0]).lower()
        if operator == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size > high:
                raise PolicyError(
                    "EntityTooLarge",
                    400,
                    "Your proposed upload exceeds the maximum allowed size",
                    ProposedSize=size,
                    MaxSizeAllowed=high,
                )
            if size < low:
                raise PolicyError(
                    "EntityTooSmall",
                    400,
                    "Your proposed upload is smaller than the minimum allowed size",
                    ProposedSize=size,
                    MinSizeAllowed=low,
                )
            continue
        name = str(condition[1]).lstrip("$").lower()
        covered.add(name)
        value = values.get(name, "")
        if (operator == "eq" and value != condition[2]) or (
            operator == "starts-with" and not value.startswith(condition[2])
        ):
            raise PolicyError(
                "AccessDenied",
                403,
                f'Invalid according to Policy: Policy Condition failed: ["{operator}", "${name}", "{condition[2]}"]',
            )
    for name in fields:
        if name in IGNORED_FIELDS or name.startswith("x-ignore-") or name in covered:
            continue
        raise PolicyError("AccessDenied", 403, f"Invalid according to Policy: Extra input fields: {name}")


class S3Front:
    """WSGI middleware in front of moto's S3 app."""

    def __init__(self, app: Callable, secret: str) -> None:
        self.app = app
        self.secret = secret

    def __call__(self, environ: dict, start_response: Callable):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "/")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "X-Amz-Expires" in query and "X-Amz-Date" in query:
            issued = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            if issued.timestamp() + int(query["X-Amz-Expires"][0]) < time.time():
                return self._respond(
                    start_response,
                    403,
                    _xml_error("AccessDenied", "Request has expired", X_Amz_Expires=query["X-Amz-Expires"][0]),
                )
        content_type = environ.get("CONTENT_TYPE", "")
        segments = [s for s in path.split("/") if s]
        if method == "POST" and len(segments) == 1 and content_type.startswith("multipart/form-data"):
            return self._post_upload(environ, start_response, segments[0])
        return self.app(environ, start_response)

    @staticmethod
    def _respond(start_response: Callable, status: int, body: bytes, headers: list | None = None):
        reasons = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 411: "Length Required"}
        start_response(
            f"{status} {reasons.get(status, 'Error')}",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))] + (headers or []),
        )
        return [body]

    def _post_upload(self, environ: dict, start_response: Callable, bucket: str):
        from werkzeug.formparser import parse_form_data

        length = int(environ.get("CONTENT_LENGTH") or 0)
        if not length:
            return self._respond(
                start_response,
                411,
                _xml_error("MissingContentLength", "You must provide the Content-Length HTTP header."),
            )
        raw = environ["wsgi.input"].read(length)
        form_environ = dict(environ, **{"wsgi.input": io.BytesIO(raw)})
        _, form, files = parse_form_data(form_environ)
        fields = {name.lower(): value for name, value in form.items()}
        upload = files.get("file")
        if upload is None:
            return self._respond(
                start_response,
                400,
                _xml_error(
                    "InvalidArgument", "POST requires exactly one file upload per request.", ArgumentName="file"
                ),
            )
        data = upload.read()
        try:
            check_post_policy(bucket, fields, len(data), self.secret)
        except PolicyError as error:
            log.info("POST /%s refused: %s %s", bucket, error.code, error.message)
            return self._respond(start_response, error.status, _xml_error(error.code, error.message, **error.extra))
        key = fields.get("key", "").replace("${filename}", upload.filename or "")
        put_environ = dict(environ)
        put_environ.update(
            {
                "REQUEST_METHOD": "PUT",
                "PATH_INFO": f"/{bucket}/{quote(key)}",
                "RAW_URI": f"/{bucket}/{quote(key)}",
                "REQUEST_URI": f"/{bucket}/{quote(key)}",
                "QUERY_STRING": "",
                "wsgi.input": io.BytesIO(data),
                "CONTENT_LENGTH": str(len(data)),
                "CONTENT_TYPE": fields.get("content-type") or "binary/octet-stream",
            }
        )
        for name in list(put_environ):
            if name.startswith("HTTP_X_AMZ_") or name == "HTTP_AUTHORIZATION":
                del put_environ[name]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None):
            captured["status"] = status
            captured["headers"] = headers

        body = b"".join(self.app(put_environ, capture))
        if not captured.get("status", "").startswith("200"):
            start_response(captured["status"], captured["headers"])
            return [body]
        etag = next((v for k, v in captured["headers"] if k.lower() == "etag"), "")
        status = int(fields.get("success_action_status") or 204)
        log.info("POST /%s/%s %d bytes stored", bucket, key, len(data))
        headers = [("ETag", etag), ("Location", f"/{bucket}/{quote(key)}")]
        if status == 201:
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Bucket>{escape(bucket)}</Bucket>'
                f"<Key>{escape(key)}</Key><ETag>{escape(etag)}</ETag></PostResponse>"
            ).encode()
            return self._respond(start_response, 201, xml, headers)
        return self._respond(start_response, 200 if status == 200 else 204, b"", headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("--dynamodb-table", action="append", default=[], help="an idempotency table to create")
    args = parser.parse_args()
    setup_logging("s3")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access line per object operation
    die_with_parent()
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from moto.s3.models import s3_backends
    from werkzeug.serving import make_server

    for bucket in args.bucket:
        s3_backends[ACCOUNT]["aws"].create_bucket(bucket, REGION)
        log.info("bucket %s created", bucket)
    from local import dynamodb

    for table in args.dynamodb_table:
        dynamodb.create_idempotency_table(table)
    app = dynamodb.app(S3Front(create_backend_app("s3"), SECRET_KEY))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    log.info("S3 listening on http://127.0.0.1:%d (moto)", args.port)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    thread.join()


if __name__ == "__main__":
    main()
