"""Local mode's auth (local/auth.py): SigV4 verification against requests signed by botocore, API keys, the
credentials file, and the 403 bodies the local API gives in the project's gateway response shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import Message
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from local.auth import (
    CLOCK_SKEW,
    Authenticator,
    AuthError,
    Credentials,
    generate_credentials,
    read_api_keys,
    read_credentials,
    write_credentials,
)

HOST = "127.0.0.1:8080"
CREDENTIALS = Credentials("AKIALOCALTESTKEY0001", "local-test-secret-0000000000000000000000", "us-east-1")
BODY = b'{"image_key": "uploads/x/image.jpg", "text": "hi"}'


def sign(
    method: str = "POST",
    path: str = "/live/v1/analyze",
    body: bytes = BODY,
    *,
    key: str = CREDENTIALS.access_key_id,
    secret: str = CREDENTIALS.secret_access_key,
    region: str = "us-east-1",
    service: str = "execute-api",
    at: datetime | None = None,
    headers: dict[str, str] | None = None,
    signer: type[SigV4Auth] = SigV4Auth,
) -> Message:
    """A request signed by botocore, as the local API receives it (headers as http.server parses them)."""
    request = AWSRequest(
        method=method,
        url=f"http://{HOST}{path}",
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=(at or datetime.now(UTC)).replace(tzinfo=None)):
        signer(BotoCredentials(key, secret), service, region).add_auth(request)
    received = Message()
    received["Host"] = HOST
    received["User-Agent"] = "python-requests/2"
    received["Content-Length"] = str(len(body))
    for name, value in request.headers.items():
        received[name] = value
    return received


def check(headers: Message, method: str = "POST", path: str = "/live/v1/analyze", body: bytes = BODY, now=None):
    return Authenticator("iam", credentials=CREDENTIALS).check(method, path, headers, body, now)


def refused(headers: Message, **kwargs) -> AuthError:
    with pytest.raises(AuthError) as caught:
        check(headers, **kwargs)
    assert caught.value.status == 403
    return caught.value


def test_a_request_signed_with_the_local_credentials_passes_with_its_identity():
    identity = check(sign())
    assert identity == {
        "caller": CREDENTIALS.user_id,
        "user": CREDENTIALS.user_id,
        "userArn": "arn:aws:iam::123456789012:user/vlp-local",
        "accountId": "123456789012",
        "accessKey": CREDENTIALS.access_key_id,
    }


def test_get_with_a_query_string_and_no_body_passes():
    assert check(sign("GET", "/v1/jobs/abc?x=1&a=2", b""), "GET", "/v1/jobs/abc?x=1&a=2", b"")["accessKey"]


def test_unsigned_is_missing_authentication_token():
    headers = Message()
    headers["Host"] = HOST
    error = refused(headers)
    assert (error.kind, error.message, error.error_type) == (
        "MISSING_AUTHENTICATION_TOKEN",
        "Missing Authentication Token",
        "MissingAuthenticationTokenException",
    )


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [
        ("another secret", {"sign": {"secret": "wrong-secret"}}),
        ("another body", {"check": {"body": BODY.replace(b"hi", b"ho")}}),
        ("another path", {"check": {"path": "/live/v1/jobs"}}),
        ("another method", {"check": {"method": "PUT"}}),
    ],
)
def test_a_wrong_signature_is_invalid_signature_with_the_canonical_request(change, kwargs):
    error = refused(sign(**kwargs.get("sign", {})), **kwargs.get("check", {}))
    assert error.kind == "INVALID_SIGNATURE", change
    assert error.message.startswith("The request signature we calculated does not match the signature you provided.")
    assert "The Canonical String for this request should have been" in error.message


def test_a_declared_payload_hash_that_is_not_the_bodys_is_refused():
    headers = sign(headers={"X-Amz-Content-SHA256": "0" * 64})
    assert refused(headers).kind == "INVALID_SIGNATURE"


def test_an_altered_signed_header_is_refused():
    headers = sign()
    headers.replace_header("Content-Type", "text/plain")
    assert refused(headers).kind == "INVALID_SIGNATURE"


def test_an_unknown_access_key_or_a_session_token_is_an_invalid_security_token():
    error = refused(sign(key="AKIAOTHERKEY00000000"))
    assert (error.kind, error.message) == ("ACCESS_DENIED", "The security token included in the request is invalid.")
    assert refused(sign(headers={"X-Amz-Security-Token": "token"})).kind == "ACCESS_DENIED"


@pytest.mark.parametrize(("region", "service"), [("eu-west-1", "execute-api"), ("us-east-1", "s3")])
def test_another_region_or_service_in_the_scope_is_refused(region, service):
    error = refused(sign(region=region, service=service))
    assert error.kind == "INVALID_SIGNATURE" and "should be scoped" in error.message


def test_the_clock_skew_window():
    signed_at = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    headers = sign(at=signed_at)
    assert check(headers, now=signed_at + CLOCK_SKEW - timedelta(seconds=1))
    assert check(headers, now=signed_at - CLOCK_SKEW + timedelta(seconds=1))
    late = refused(headers, now=signed_at + CLOCK_SKEW + timedelta(seconds=1))
    assert late.message.startswith("Signature expired: 20261130T120000Z is now earlier than 20261130T120001Z")
    early = refused(headers, now=signed_at - CLOCK_SKEW - timedelta(seconds=1))
    assert early.message.startswith("Signature not yet current: 20261130T120000Z is still later than")


def test_a_malformed_authorization_header_is_refused():
    headers = Message()
    headers["Host"] = HOST
    headers["Authorization"] = "Bearer abc"
    assert refused(headers).kind == "INVALID_SIGNATURE"


def test_signers_that_sign_more_headers_than_botocore_also_verify():
    """curl --aws-sigv4 and other signers may sign user-agent, which botocore's own signer leaves out."""

    class SignsEverything(SigV4Auth):
        def headers_to_sign(self, request):
            selected = super().headers_to_sign(request)
            selected["user-agent"] = request.headers["User-Agent"]
            return selected

    headers = sign(headers={"User-Agent": "curl/8.5.0"}, signer=SignsEverything)
    del headers["User-Agent"]  # the Message carries the one the request had
    headers["User-Agent"] = "curl/8.5.0"
    assert "user-agent" in headers["Authorization"]
    assert check(headers)["accessKey"] == CREDENTIALS.access_key_id


def test_api_keys(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(["k" * 24, {"id": "team-b", "value": "v" * 30}]))
    keys = read_api_keys(path)
    auth = Authenticator("api_key", api_keys=keys)
    for value, key_id in (("k" * 24, keys["k" * 24]), ("v" * 30, "team-b")):
        headers = Message()
        headers["x-api-key"] = value
        assert auth.check("POST", "/v1/analyze", headers, b"") == {"apiKey": value, "apiKeyId": key_id}
    for given in (None, "w" * 24):
        headers = Message()
        if given:
            headers["x-api-key"] = given
        with pytest.raises(AuthError) as caught:
            auth.check("POST", "/v1/analyze", headers, b"")
        assert (caught.value.kind, caught.value.message) == ("INVALID_API_KEY", "Forbidden")


@pytest.mark.parametrize("content", ["{}", "[]", '["short"]', "[1]", "not json"])
def test_a_bad_api_keys_file_is_refused(tmp_path, content):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=str(path)):
        read_api_keys(path)


def test_generated_credentials_round_trip_through_an_owner_only_file(tmp_path):
    first, second = generate_credentials(), generate_credentials()
    assert first != second
    assert first.access_key_id.startswith("AKIA") and len(first.access_key_id) == 20
    assert len(first.secret_access_key) == 40
    path = tmp_path / "run" / "credentials.json"
    write_credentials(path, "iam", first, [])
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_credentials(path) == first
    assert json.loads(path.read_text())["auth"] == "iam"


def test_the_mode_none_checks_nothing_and_modes_need_their_secrets():
    assert Authenticator("none").check("POST", "/v1/analyze", Message(), b"") == {}
    with pytest.raises(ValueError):
        Authenticator("iam")
    with pytest.raises(ValueError):
        Authenticator("api_key")
    with pytest.raises(ValueError):
        Authenticator("cognito")


def test_the_local_api_answers_a_refusal_in_the_projects_shape():
    """RestApi.gateway_response with the synthesized gateway responses: DEFAULT_4XX carries the response type as
    the code, MISSING_AUTHENTICATION_TOKEN its own literal message."""
    from local.api import RestApi

    template = '{"error": {"code": "$context.error.responseType", "message": $context.error.messageString, '
    template += '"request_id": "$context.requestId"}}'
    missing = template.replace("$context.error.messageString", '"Missing authentication, or no such route."')
    api = RestApi(
        {
            "routes": [],
            "stage": "live",
            "gateway_responses": {
                "DEFAULT_4XX": {"status": None, "template": template, "headers": {"Content-Type": "application/json"}},
                "MISSING_AUTHENTICATION_TOKEN": {"status": 403, "template": missing, "headers": {}},
            },
        },
        {},
        "http://127.0.0.1:1",
    )
    status, _, body = api.gateway_response("INVALID_SIGNATURE", 403, 'The request signature "x"\nmismatch', "rid-1")
    assert status == 403
    assert json.loads(body) == {
        "error": {"code": "INVALID_SIGNATURE", "message": 'The request signature "x"\nmismatch', "request_id": "rid-1"}
    }
    status, _, body = api.gateway_response("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", "r2")
    assert json.loads(body)["error"]["code"] == "MISSING_AUTHENTICATION_TOKEN"


def test_the_caller_goes_into_the_proxy_events_identity():
    """As API Gateway does: userArn/accessKey for IAM, apiKey/apiKeyId for keys; the other fields stay."""
    from types import SimpleNamespace

    from local.api import _event

    headers = sign()
    handler = SimpleNamespace(
        headers=headers,
        path="/live/v1/analyze",
        command="POST",
        request_version="HTTP/1.1",
        client_address=("1.2.3.4", 1),
    )
    route = {"path": "/v1/analyze"}
    identity = check(headers)
    event = _event(handler, route, "/v1/analyze", {}, BODY, "rid", "live", identity)  # type: ignore[arg-type]  # a SimpleNamespace stands in for the request handler
    seen = event["requestContext"]["identity"]
    assert seen["userArn"] == CREDENTIALS.user_arn and seen["accessKey"] == CREDENTIALS.access_key_id
    assert seen["sourceIp"] == "1.2.3.4" and seen["apiKeyId"] is None
    keyed = _event(handler, route, "/v1/analyze", {}, BODY, "rid", "live", {"apiKey": "k", "apiKeyId": "id1"})  # type: ignore[arg-type]  # a SimpleNamespace stands in for the request handler
    assert keyed["requestContext"]["identity"]["apiKeyId"] == "id1"
    assert keyed["requestContext"]["identity"]["userArn"] is None
    assert (
        _event(handler, route, "/v1/analyze", {}, BODY, "rid", "live")["requestContext"]["identity"]["apiKey"] is None
    )  # type: ignore[arg-type]  # a SimpleNamespace stands in for the request handler


@pytest.mark.parametrize("zone", ["-0000", "+0000", "GMT"])
def test_a_date_header_in_utc_is_read_as_utc_whatever_the_machines_zone(zone, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        stamp = Authenticator._timestamp({"Date": f"Mon, 30 Nov 2026 06:53:00 {zone}"})
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert stamp == datetime(2026, 11, 30, 6, 53, tzinfo=UTC)
