"""The local HTTP API (runs in .venv): what the REST API of the `<env>/Api` stack does, on 127.0.0.1.

Routes, request models, integration timeouts, CORS preflight answers and gateway responses are read from the
synthesized template (local/assembly.py), so the local API answers with the same routes, status codes and bodies:

- a matched route becomes an API Gateway REST proxy event (payload 1.0) and goes to the route's function through
  the local Lambda service; the function's proxy response becomes the HTTP response;
- a JSON body is validated against the route's model (JSON Schema draft 4, as API Gateway does) first:
  BAD_REQUEST_BODY (400 INVALID_REQUEST) when it fails;
- no route or method: MISSING_AUTHENTICATION_TOKEN (403), as API Gateway answers for an IAM-authorized API;
  a body over 10 MB: REQUEST_TOO_LARGE (413); integration timeout: 504; a function error or a malformed proxy
  response: 502; stage throttling (THROTTLED, 429) only with --throttle;
- authentication (local/auth.py) before routing, as `--auth` says: `none` (the default: the log says so), `iam`
  (SigV4 against local credentials) or `api_key` (`x-api-key`); a refused call gets API Gateway's 403 (missing
  token, invalid signature, invalid key) in the project's shape, and the caller goes into requestContext.identity.

The stage prefix is optional: http://127.0.0.1:8080/v1/analyze and http://127.0.0.1:8080/live/v1/analyze (ApiUrl +
route, as in the cloud) are the same route.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from local.auth import MODES, Authenticator, AuthError, read_api_keys, read_identities
from local.common import ACCOUNT, Handler, Server, die_with_parent, serve, setup_logging

log = logging.getLogger("api")
MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway REST: 10 MB
LAMBDA_MAX_PAYLOAD = 6 * 1024 * 1024
TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|x-www-form-urlencoded|javascript)|[^;]*\+json)", re.I)


class RestApi:
    def __init__(
        self,
        api: dict,
        functions: dict[str, dict],
        lambda_endpoint: str,
        *,
        throttle: bool = False,
        auth: Authenticator | None = None,
    ) -> None:
        from jsonschema import Draft4Validator

        self.auth = auth or Authenticator("none")

        self.stage: str = api["stage"]  # the synthesized Stage's name (local.assembly)
        self.functions = functions
        self.lambda_endpoint = urlsplit(lambda_endpoint)
        self.routes = []
        for route in api["routes"]:
            pattern = "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(route["path"])) + "$"
            validator = Draft4Validator(route["schema"]) if route.get("schema") else None
            self.routes.append(dict(route, regex=re.compile(pattern), validator=validator))
        self.preflight = api.get("preflight", {})
        self.gateway_responses = api.get("gateway_responses", {})
        self.throttle = api.get("throttle") if throttle else None
        self._tokens = float((self.throttle or {}).get("burst") or 0)
        self._refilled = time.monotonic()
        self._throttle_lock = threading.Lock()
        self._local = threading.local()

    # ---- gateway responses ----
    def gateway_response(
        self, kind: str, default_status: int, message: str, request_id: str, validation: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        fallback = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        spec = self.gateway_responses.get(kind) or self.gateway_responses.get(fallback)
        if spec is None or not spec.get("template"):
            return default_status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()
        body = (
            spec["template"]
            .replace("$context.error.responseType", kind)
            .replace("$context.error.messageString", json.dumps(message))
            .replace("$context.error.validationErrorString", json.dumps(validation)[1:-1])
            .replace("$context.error.message", json.dumps(message)[1:-1])
            .replace("$context.requestId", request_id)
        )
        headers = dict(spec.get("headers") or {"Content-Type": "application/json"})
        return spec.get("status") or default_status, headers, body.encode()

    def take_token(self) -> bool:
        if not self.throttle:
            return True
        with self._throttle_lock:
            now = time.monotonic()
            rate = float(self.throttle.get("rate") or 0)
            burst = float(self.throttle.get("burst") or rate)
            self._tokens = min(burst, self._tokens + (now - self._refilled) * rate)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    # ---- routing ----
    def match(self, method: str, path: str) -> tuple[dict | None, dict[str, str], bool]:
        """(route, path parameters, path exists with another method)."""
        other_method = False
        for route in self.routes:
            found = route["regex"].match(path)
            if found:
                if route["method"] == method:
                    return route, found.groupdict(), False
                other_method = True
        return None, {}, other_method

    # ---- Lambda ----
    def invoke(self, function: str, body: bytes, timeout: float) -> tuple[int, dict[str, str], bytes]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.lambda_endpoint.hostname or "127.0.0.1", self.lambda_endpoint.port
            )
            self._local.connection = connection
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        arn = self.functions[function]["arn"]
        try:
            connection.request(
                "POST",
                f"/2015-03-31/functions/{quote(arn, safe='')}/invocations",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            data = response.read()
        except Exception:
            connection.close()
            self._local.connection = None
            raise
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


API: RestApi | None = None
_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}

# Bounds and combinators in API Gateway's validator's words: {value} the schema's bound, {found} the instance,
# {size} its length, {count} the number of subschemas.
_KEYWORD_MESSAGES = {
    "maxLength": "string is too long (length: {size}, maximum allowed: {value})",
    "minLength": "string is too short (length: {size}, minimum allowed: {value})",
    "maxItems": "array is too long: must have at most {value} elements but instance has {size} elements",
    "minItems": "array is too short: must have at least {value} elements but instance has {size} elements",
    "maximum": "numeric instance is greater than the required maximum (maximum: {value}, found: {found})",
    "minimum": "numeric instance is lower than the required minimum (minimum: {value}, found: {found})",
    "anyOf": "instance failed to match at least one required schema among {count}",
    "oneOf": "instance failed to match exactly one required schema among {count}",
}


def _describe(error: Any) -> str:
    """A JSON Schema error in the words of API Gateway's validator (e.g. `object has missing required properties
    (["kind"])`), with the instance path."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    if keyword == "required":
        missing = [name for name in value if isinstance(instance, dict) and name not in instance]
        text = f"object has missing required properties ({json.dumps(missing)})"
    elif keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in instance if name not in allowed) if isinstance(instance, dict) else []
        text = f"object instance has properties which are not allowed by the schema: {json.dumps(extra)}"
    elif keyword == "type":
        allowed_types = value if isinstance(value, list) else [value]
        text = (
            f"instance type ({_TYPES.get(type(instance), 'unknown')}) does not match any allowed primitive type "
            f"(allowed: {json.dumps(allowed_types)})"
        )
    elif keyword == "enum":
        text = f"instance value ({json.dumps(instance)[:100]}) not found in enum (possible values: {json.dumps(value)})"
    elif keyword in _KEYWORD_MESSAGES:
        size = len(instance) if isinstance(instance, (str, list, dict)) else None
        count = len(value) if isinstance(value, list) else None
        text = _KEYWORD_MESSAGES[keyword].format(value=value, found=instance, size=size, count=count)
    elif keyword == "pattern":
        text = f"ECMA 262 regex {json.dumps(value)} does not match input string {json.dumps(str(instance)[:100])}"
    else:
        text = error.message[:200]
    where = "/" + "/".join(str(part) for part in error.absolute_path)
    return f"{text} (at {where})" if error.absolute_path else text


def _event(
    handler: ApiHandler,
    route: dict,
    path: str,
    parameters: dict,
    body: bytes,
    request_id: str,
    stage: str,
    identity: dict | None = None,
) -> dict:
    headers: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in handler.headers.items():
        headers[name] = value
        multi.setdefault(name, []).append(value)
    query = parse_qs(urlsplit(handler.path).query, keep_blank_values=True)
    content_type = handler.headers.get("Content-Type", "")
    text_body: str | None = None
    encoded = False
    if body:
        try:
            if content_type and not TEXT_TYPES.match(content_type):
                raise UnicodeDecodeError("utf-8", b"", 0, 1, "binary media type")
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body = base64.b64encode(body).decode("ascii")
            encoded = True
    now = datetime.now(UTC)
    return {
        "resource": route["path"],
        "path": path,
        "httpMethod": handler.command,
        "headers": headers or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route["path"],
            "httpMethod": handler.command,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT,
            "protocol": handler.request_version,
            "stage": stage,
            "domainPrefix": "local",
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "sourceIp": handler.client_address[0],
                "userAgent": handler.headers.get("User-Agent"),
                "caller": None,
                "user": None,
                "userArn": None,
                "accountId": None,
                "accessKey": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "apiKey": None,
                "apiKeyId": None,
                **(identity or {}),
            },
            "domainName": handler.headers.get("Host", "127.0.0.1"),
            "apiId": "local",
        },
        "body": text_body,
        "isBase64Encoded": encoded,
    }


class ApiHandler(Handler):
    def _reply(self, status: int, headers: dict[str, str], body: bytes, request_id: str) -> None:
        headers = dict(headers)
        headers.setdefault("x-amzn-RequestId", request_id)
        content_type = headers.pop("Content-Type", None) or headers.pop("content-type", None)
        self.send(status, body, headers=headers, content_type=content_type)

    def _gateway(
        self, kind: str, status: int, message: str, request_id: str, validation: str = "", error_type: str = ""
    ) -> None:
        assert API is not None
        status, headers, body = API.gateway_response(kind, status, message, request_id, validation)
        if error_type:
            headers = {**headers, "x-amzn-ErrorType": error_type}
        log.info("%s %s %d %s", self.command, self.path, status, kind)
        self._reply(status, headers, body, request_id)

    def _handle(self) -> None:
        assert API is not None
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        path = urlsplit(self.path).path
        stage_prefix = f"/{API.stage}"
        # <ApiUrl>/v1/... (ApiUrl ends with the stage) and /v1/... both reach the routes, which all start with /v1/.
        if path.startswith(stage_prefix + "/v1/"):
            path = path[len(stage_prefix) :]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD:
            self.read_body(MAX_PAYLOAD)
            return self._gateway("REQUEST_TOO_LARGE", 413, "Request Too Long", request_id)
        body = self.read_body(MAX_PAYLOAD)
        if body is None:
            return self._gateway("REQUEST_TOO_LARGE", 413, "Request Too Long", request_id)
        if self.command == "OPTIONS" and path in API.preflight:
            headers = dict(API.preflight[path])
            return self._reply(204, headers, b"", request_id)
        try:
            identity = API.auth.check(self.command, self.path, self.headers, body)
        except AuthError as refused:
            return self._gateway(
                refused.kind, refused.status, refused.message, request_id, error_type=refused.error_type
            )
        route, parameters, _ = API.match(self.command, path)
        if route is None or route.get("function") not in API.functions:
            return self._gateway("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", request_id)
        if not API.take_token():
            return self._gateway("THROTTLED", 429, "Too Many Requests", request_id)
        if route["validator"] is not None:
            problem = self._validate(route["validator"], body)
            if problem is not None:
                return self._gateway("BAD_REQUEST_BODY", 400, "Invalid request body", request_id, problem)
        event = json.dumps(_event(self, route, path, parameters, body, request_id, API.stage, identity)).encode()
        if len(event) > LAMBDA_MAX_PAYLOAD:
            return self._gateway("REQUEST_TOO_LARGE", 413, "Request Too Long", request_id)
        timeout = route["timeout_ms"] / 1000
        try:
            status, headers, data = API.invoke(route["function"], event, timeout)
        except TimeoutError:
            return self._gateway("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out", request_id)
        except OSError as error:
            log.error("lambda service unreachable: %s", error)
            return self._gateway("INTEGRATION_FAILURE", 500, "Internal server error", request_id)
        if status != 200 or headers.get("x-amz-function-error"):
            log.error("%s %s: function %s failed (%s): %s", self.command, path, route["function"], status, data[:500])
            return self._gateway("INTEGRATION_FAILURE", 502, "Internal server error", request_id)
        try:
            proxy = json.loads(data)
            status = int(proxy["statusCode"])
            out_headers = {str(k): str(v) for k, v in (proxy.get("headers") or {}).items()}
            for name, values in (proxy.get("multiValueHeaders") or {}).items():
                out_headers[str(name)] = ",".join(str(v) for v in values)
            raw = proxy.get("body") or ""
            payload = base64.b64decode(raw) if proxy.get("isBase64Encoded") else str(raw).encode()
        except (ValueError, KeyError, TypeError):
            log.error("%s %s: malformed Lambda proxy response: %s", self.command, path, data[:500])
            return self._gateway("INTEGRATION_FAILURE", 502, "Internal server error", request_id)
        log.info("%s %s %d %.0f ms", self.command, path, status, (time.monotonic() - started) * 1000)
        return self._reply(status, out_headers, payload, request_id)

    @staticmethod
    def _validate(validator: Any, body: bytes) -> str | None:
        """None, or API Gateway's validationErrorString (its validator's wording) for an invalid body."""
        try:
            document = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: JSON nested too deep
            return "Invalid request body"
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        return "[" + ", ".join(_describe(error) for error in errors[:5]) + "]"

    # http.server calls do_<METHOD>: every method goes to the one router, which answers what the deployment does
    # not route as API Gateway does (403 Missing Authentication Token).
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle


def main() -> None:
    global API
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deployment", type=Path, required=True, help="JSON written by local.up")
    parser.add_argument("--lambda-endpoint", required=True)
    parser.add_argument("--throttle", action="store_true", help="enforce the stage's throttling (429 THROTTLED)")
    parser.add_argument("--auth", choices=MODES, default="none", help="none (default), iam (SigV4) or api_key")
    parser.add_argument("--credentials", type=Path, help="--auth iam: the credentials.json local.up wrote")
    parser.add_argument("--api-keys", type=Path, help="--auth api_key: a JSON list of keys")
    args = parser.parse_args()
    setup_logging("api")
    die_with_parent()
    deployment = json.loads(args.deployment.read_text())
    if args.auth == "iam" and args.credentials is None:
        parser.error("--auth iam needs --credentials FILE")
    if args.auth == "api_key" and args.api_keys is None:
        parser.error("--auth api_key needs --api-keys FILE")
    auth = Authenticator(
        args.auth,
        credentials=read_identities(args.credentials) if args.auth == "iam" else None,
        api_keys=read_api_keys(args.api_keys) if args.auth == "api_key" else None,
    )
    API = RestApi(deployment["api"], deployment["functions"], args.lambda_endpoint, throttle=args.throttle, auth=auth)
    server = Server(("127.0.0.1", args.port), ApiHandler)
    for route in API.routes:
        log.info(
            "route %s %s -> %s (cloud auth %s, local auth %s)",
            route["method"],
            route["path"],
            route["function"],
            route["authorization"],
            auth.mode,
        )
    if auth.mode == "none":
        log.info("authentication is OFF in local mode (the cloud API uses api.auth=%s)", deployment.get("auth"))
    else:
        log.info("authentication: %s (the cloud API uses api.auth=%s)", auth.mode, deployment.get("auth"))
    if API.throttle:
        log.info("stage throttling enforced: %s", API.throttle)
    serve(server, log, "API")


if __name__ == "__main__":
    main()
