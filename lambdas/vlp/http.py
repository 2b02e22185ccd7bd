"""API Gateway (Lambda proxy) events in, proxy responses out, and THE mapping of exceptions to error responses.

Events are parsed with a slim pydantic model of the fields we read (REST API payload v1 and HTTP API v2 both
work): Powertools' bundled event models import every event source's model, which costs cold-start time.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlp.errors import CODES, CallerError, VlpError

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class _Http(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    method: str | None = None
    path: str | None = None


class _RequestContext(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    requestId: str = Field(min_length=1)
    http: _Http | None = None  # HTTP API (payload 2.0)
    identity: dict[str, Any] | None = None  # REST API: the caller (userArn, apiKeyId, cognitoIdentityId, ...)
    authorizer: dict[str, Any] | None = None  # claims (Cognito), iam / jwt (HTTP API)


class ApiEvent(BaseModel):
    """The fields of an API Gateway proxy event that the handlers use."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    requestContext: _RequestContext
    httpMethod: str | None = None  # REST API (payload 1.0)
    resource: str | None = None
    path: str | None = None
    rawPath: str | None = None
    headers: dict[str, str | None] | None = None
    pathParameters: dict[str, str | None] | None = None
    body: str | None = None
    isBase64Encoded: bool = False

    @property
    def request_id(self) -> str:
        return self.requestContext.requestId

    @property
    def method(self) -> str:
        method = self.httpMethod or (self.requestContext.http.method if self.requestContext.http else None) or ""
        return method.upper()

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in (self.headers or {}).items():
            if key.lower() == lowered:
                return value
        return None

    def path_parameter(self, name: str) -> str | None:
        return (self.pathParameters or {}).get(name)

    def body_bytes(self, max_bytes: int) -> bytes:
        """The raw body, decoded from base64 when API Gateway encoded it; 413 above ``max_bytes``."""
        raw = self.body or ""
        if len(raw) > max_bytes * 4 // 3 + 4:
            raise CallerError(f"The request body is above {max_bytes} bytes.", code="REQUEST_TOO_LARGE")
        if self.isBase64Encoded:
            try:
                data = base64.b64decode(raw, validate=True)
            except ValueError:
                raise CallerError("The request body is not valid base64.", code="INVALID_JSON") from None
        else:
            data = raw.encode("utf-8")
        if len(data) > max_bytes:
            raise CallerError(f"The request body is above {max_bytes} bytes.", code="REQUEST_TOO_LARGE")
        return data


def cors_headers(event: ApiEvent | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """CORS response headers for a browser caller whose Origin is allowed (preflight OPTIONS is answered by
    API Gateway's CORS configuration; these go on the actual responses of a proxy integration)."""
    origin = event.header("Origin") if event is not None else None
    if not origin or not allowed:
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    if origin in allowed:
        return {
            "Access-Control-Allow-Origin": origin,
            "Vary": "Origin",
            "Access-Control-Expose-Headers": "X-Request-Id, Location, Retry-After, Idempotent-Replayed",
        }
    return {}


def parse_event(event: Any) -> ApiEvent:
    try:
        return ApiEvent.model_validate(event)
    except ValidationError:
        # Not an API Gateway proxy event: a wiring problem, not the caller's fault.
        raise VlpError("The function was invoked with an event that is not an API Gateway proxy event.") from None


def json_response(
    status: int, body: Any, *, request_id: str | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    merged = dict(JSON_HEADERS)
    if request_id:
        merged["X-Request-Id"] = request_id
    if headers:
        merged.update(headers)
    return {
        "statusCode": status,
        "headers": merged,
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "isBase64Encoded": False,
    }


def error_body(code: str, message: str, *, request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if request_id:
        error["request_id"] = request_id
    error.update({key: value for key, value in extra.items() if value is not None})
    return {"error": error}


def error_response(exc: BaseException, *, request_id: str | None = None) -> dict[str, Any]:
    """THE one place where an exception becomes an HTTP error response.

    A VlpError keeps its code and status (4xx for caller errors, 5xx otherwise, with the step when a model
    step failed); anything else is a 500 INTERNAL_ERROR whose message never includes the exception text.
    """
    if isinstance(exc, VlpError):
        status = exc.status if 400 <= exc.status <= 599 else 500
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        body = error_body(exc.code, exc.message, request_id=request_id, step=exc.step, details=exc.details)
        return json_response(status, body, request_id=request_id, headers=headers)
    return json_response(
        500, error_body("INTERNAL_ERROR", CODES["INTERNAL_ERROR"][1], request_id=request_id), request_id=request_id
    )


def execution_error_response(error: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    """An HTTP error from ``vlp.errors.error_from_execution``'s result."""
    status = error.get("status", 500)
    headers = {"Retry-After": str(error["retry_after"])} if error.get("retry_after") else None
    body = error_body(
        error["code"], error["message"], request_id=request_id, step=error.get("step"), details=error.get("details")
    )
    return json_response(status, body, request_id=request_id, headers=headers)
