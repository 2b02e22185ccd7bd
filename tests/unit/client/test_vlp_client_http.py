"""VlpClient over stubbed HTTP (responses): request bodies, uploads, signing, errors, retries, jobs, downloads."""

from __future__ import annotations

import base64
import hashlib
import json
from email.message import Message
from urllib.parse import urlsplit

import pytest
import responses
from conftest import ACCESS_KEY, API, S3_URL, SECRET_KEY, png_bytes, queue_job, stub_upload
from vlp_client import MAX_INLINE_IMAGE_BYTES, AnalyzeResult, Job, VlpClient, VlpError

from local.auth import Authenticator, AuthError, Credentials

SEGMENT_RESULT = {
    "request_id": "0d6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d",
    "task": "segment",
    "requested_task": "auto",
    "answer": "A red square.",
    "intent": {"label": "segment", "score": 0.87, "scores": {"segment": 0.87, "describe": 0.13}},
    "keywords": [{"keyword": "square", "score": 0.71}],
    "transcript": {"text": "segment the red square", "language": "en", "duration": 1.5},
    "image": {"width": 64, "height": 48, "key": "inputs/0d6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.png"},
    "detections": [
        {
            "label": "square",
            "score": 0.82,
            "box": [1.0, 2.0, 30.5, 40.0],
            "mask": {"key": "results/r/mask-0.png", "url": S3_URL + "results/r/mask-0.png?sig=0", "area": 900},
        },
        {"label": "red", "score": 0.4, "box": [0, 0, 5, 5], "mask": None},
        {
            "label": "thing",
            "score": 0.3,
            "box": [3, 3, 9, 9],
            "mask": {"key": "results/r/mask-2.png", "url": S3_URL + "results/r/mask-2.png?sig=2", "area": 36},
        },
    ],
    "overlay": {"key": "results/r/overlay.png", "url": S3_URL + "results/r/overlay.png?sig=o"},
    "tags": None,
    "prompt": None,
    "models": {"vlm": {"model": None, "random_weights": True}, "grounded_sam": {"model": "g", "random_weights": False}},
    "random_weights": False,
    "timings_ms": {"total": 12.5},
    "warnings": ["something was adjusted"],
}


def upload_form(key: str = "uploads/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.png") -> dict:
    return {
        "url": S3_URL,
        "fields": {"Content-Type": "image/png", "key": key, "policy": "cG9saWN5", "x-amz-signature": "abc"},
        "key": key,
        "kind": "image",
        "content_type": "image/png",
        "max_bytes": 10485760,
        "expires_in": 900,
        "expires_at": "2026-11-30T12:15:00+00:00",
    }


def sent_json(call: responses.Call) -> dict:
    return json.loads(call.request.body)


# ---- request bodies ----
def test_small_image_goes_inline_and_the_result_is_typed(http):
    image = png_bytes()
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    result = VlpClient(API).analyze(
        image, text="segment the red square", task="segment", labels=["square"], options={"box_threshold": 0.3}
    )
    body = sent_json(http.calls[0])
    assert base64.b64decode(body["image_base64"]) == image
    assert body == {
        "image_base64": body["image_base64"],
        "text": "segment the red square",
        "task": "segment",
        "labels": ["square"],
        "options": {"box_threshold": 0.3},
    }
    assert isinstance(result, AnalyzeResult)
    assert result.raw == SEGMENT_RESULT
    assert (result.task, result.answer, result.request_id) == ("segment", "A red square.", SEGMENT_RESULT["request_id"])
    assert result.intent is not None and (result.intent.label, result.intent.score) == ("segment", 0.87)
    assert [(k.keyword, k.score) for k in result.keywords] == [("square", 0.71)]
    assert [(d.label, d.box) for d in result.detections[:2]] == [
        ("square", (1.0, 2.0, 30.5, 40.0)),
        ("red", (0, 0, 5, 5)),
    ]
    assert [(m.index, m.area) for m in result.masks] == [(0, 900), (2, 36)]
    assert result.overlay == SEGMENT_RESULT["overlay"]
    assert result.transcript == "segment the red square"
    assert result.warnings == ["something was adjusted"]
    assert result.random_weights is True  # one model says so, though the top-level flag does not
    assert result.tags == [] and result.prompt is None


def test_auto_task_and_empty_fields_are_left_out_and_history_is_sent(http):
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    history = [{"role": "user", "text": "what is it?"}, {"role": "assistant", "text": "a square"}]
    VlpClient(API).analyze(png_bytes(), text="and its colour?", history=history)
    assert set(sent_json(http.calls[0])) == {"image_base64", "text", "history"}
    assert sent_json(http.calls[0])["history"] == history


def test_an_api_key_string_is_sent_as_image_key(http):
    key = "uploads/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg"
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    VlpClient(API).analyze(key)
    assert sent_json(http.calls[0]) == {"image_key": key}


def test_a_missing_file_is_a_local_error_with_exit_status_2(tmp_path):
    with pytest.raises(VlpError) as caught:
        VlpClient(API).analyze(tmp_path / "nope.jpg")
    assert caught.value.code == "FILE_NOT_FOUND" and caught.value.status is None and caught.value.exit_code == 2


def test_a_large_image_is_uploaded_first_with_progress(http, tmp_path):
    image = png_bytes((400, 400), noise=True)
    assert len(image) > MAX_INLINE_IMAGE_BYTES
    path = tmp_path / "big.png"
    path.write_bytes(image)
    form = upload_form()
    stub_upload(http, form, {"kind": "image", "content_type": "image/png"})
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    seen: list[tuple[int, int]] = []
    VlpClient(API).analyze(path, progress=lambda sent, total: seen.append((sent, total)))

    s3 = http.calls[1].request
    assert s3.url == S3_URL
    assert s3.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = s3.body
    assert int(s3.headers["Content-Length"]) == len(body)
    # every policy field as it is, in order, and the file last, with the same content type
    positions = [body.index(f'name="{name}"'.encode()) for name in form["fields"]]
    assert positions == sorted(positions)
    assert body.index(b'name="file"; filename="big.png"') > positions[-1]
    assert image in body
    assert sent_json(http.calls[2]) == {"image_key": form["key"]}
    assert seen[-1] == (len(body), len(body))


def test_upload_progress_follows_the_reads_of_the_http_client():
    from vlp_client.client import _ProgressBody

    seen: list[tuple[int, int]] = []
    stream = _ProgressBody(bytes(40_000), lambda sent, total: seen.append((sent, total)))
    assert len(stream) == 40_000
    chunks = list(iter(lambda: stream.read(16_384), b""))  # urllib3 sends a file-like body by blocks
    assert [len(c) for c in chunks] == [16_384, 16_384, 7_232]
    assert seen == [(16_384, 40_000), (32_768, 40_000), (40_000, 40_000)]


def test_audio_is_always_uploaded(http):
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)
    form = upload_form("uploads/1b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/audio.wav")
    stub_upload(http, form, {"kind": "audio", "content_type": "audio/wav"})
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    VlpClient(API).analyze(png_bytes(), audio=wav)
    assert sent_json(http.calls[2])["audio_key"] == form["key"]


def test_an_s3_refusal_is_a_vlp_error_with_s3s_code(http):
    http.post(API + "/v1/uploads", json=upload_form(), status=201)
    http.post(
        S3_URL,
        status=400,
        body=b"<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size"
        b"</Message></Error>",
        headers={"x-amz-request-id": "S3REQ"},
    )
    with pytest.raises(VlpError) as caught:
        VlpClient(API).upload(png_bytes())
    assert (caught.value.code, caught.value.status, caught.value.request_id) == ("EntityTooLarge", 400, "S3REQ")
    assert "maximum allowed size" in caught.value.message


def test_a_file_of_another_type_is_refused_before_sending(http, tmp_path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"\x00\x01 not a known format")
    with pytest.raises(VlpError) as caught:
        VlpClient(API).upload(path)
    assert caught.value.code == "INVALID_ARGUMENT" and "image/jpeg" in caught.value.message
    with pytest.raises(VlpError) as caught:
        VlpClient(API).upload(png_bytes(), kind="audio")  # a PNG is not audio
    assert caught.value.code == "INVALID_ARGUMENT" and "audio/wav" in caught.value.message
    assert len(http.calls) == 0


# ---- auth ----
def _verify(call: responses.Call, credentials: Credentials, now=None) -> dict:
    """Checks a captured request the way local mode does (botocore's signer on the other side)."""
    request = call.request
    headers = Message()
    for name, value in request.headers.items():
        headers[name] = value
    headers["Host"] = urlsplit(request.url).netloc
    split = urlsplit(request.url)
    target = split.path + (f"?{split.query}" if split.query else "")
    body = request.body or b""
    return Authenticator("iam", credentials=credentials).check(
        request.method, target, headers, body if isinstance(body, bytes) else body.encode(), now
    )


def test_iam_signs_with_the_credential_chain_and_the_urls_region(http, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    queue_job(http, "j1")
    client = VlpClient(API, auth="iam")
    assert client.signing_region() == "eu-west-1"
    job = client.submit_job(png_bytes(), text="hi", idempotency_key="key-1")
    assert (job.job_id, job.status) == ("j1", "queued")
    request = http.calls[0].request
    assert request.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-west-1/execute-api/aws4_request" in request.headers["Authorization"]
    assert request.headers["Idempotency-Key"] == "key-1"
    assert "idempotency-key" in request.headers["Authorization"]  # signed
    identity = _verify(http.calls[0], Credentials(ACCESS_KEY, SECRET_KEY, "eu-west-1"))
    assert identity["accessKey"] == ACCESS_KEY
    # the same signature over another body, another secret or another region does not verify
    tampered = http.calls[0]
    tampered.request.body = tampered.request.body.replace(b'"hi"', b'"ho"')
    with pytest.raises(AuthError) as caught:
        _verify(tampered, Credentials(ACCESS_KEY, SECRET_KEY, "eu-west-1"))
    assert caught.value.kind == "INVALID_SIGNATURE"


def test_iam_with_a_profile_uses_that_profiles_keys(http, tmp_path, monkeypatch):
    (tmp_path / "aws-credentials").write_text(
        f"[other]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    (tmp_path / "aws-config").write_text("[profile other]\nregion = ap-south-1\n")
    http.get("https://api.example.com/v1/jobs/j1", json={"job_id": "j1", "status": "running"})
    client = VlpClient("https://api.example.com", auth="iam", profile="other")
    assert client.signing_region() == "ap-south-1"  # a custom domain: the profile's region
    client.job("j1")
    assert _verify(http.calls[0], Credentials(ACCESS_KEY, SECRET_KEY, "ap-south-1"))["userArn"].endswith("vlp-local")
    with pytest.raises(VlpError) as caught:
        VlpClient(API, auth="iam", profile="missing").job("j1")
    assert caught.value.code == "PROFILE_NOT_FOUND" and caught.value.exit_code == 2


def test_iam_without_credentials_is_a_local_error(http):
    with pytest.raises(VlpError) as caught:
        VlpClient(API, auth="iam").job("j1")
    assert caught.value.code == "NO_CREDENTIALS" and len(http.calls) == 0


def test_api_key_and_cognito_headers(http, monkeypatch):
    http.get(API + "/v1/jobs/j1", json={"job_id": "j1", "status": "running"})
    VlpClient(API, auth="api_key", api_key="k" * 24).job("j1")
    assert http.calls[0].request.headers["x-api-key"] == "k" * 24
    monkeypatch.setenv("VLP_TOKEN", "eyJ.token.sig")
    VlpClient(API, auth="cognito").job("j1")
    assert http.calls[1].request.headers["Authorization"] == "eyJ.token.sig"
    assert "Authorization" not in http.calls[0].request.headers
    with pytest.raises(VlpError, match="API key"):
        VlpClient(API, auth="api_key")


# ---- errors and retries ----
def test_an_api_error_carries_code_message_status_request_id(http):
    error = {"error": {"code": "TOO_MANY_LABELS", "message": "labels: at most 500", "request_id": "req-1"}}
    http.post(API + "/v1/analyze", json=error, status=400, headers={"X-Request-Id": "req-1"})
    with pytest.raises(VlpError) as caught:
        VlpClient(API).analyze(png_bytes(), labels=["x"] * 501)
    assert (caught.value.code, caught.value.status, caught.value.request_id) == ("TOO_MANY_LABELS", 400, "req-1")
    assert str(caught.value) == "TOO_MANY_LABELS: labels: at most 500 (request id req-1)"
    assert caught.value.exit_code == 2


def test_a_5xx_and_a_network_failure_exit_1(http):
    http.post(API + "/v1/analyze", json={"error": {"code": "VLM_FAILED", "message": "m", "step": "vlm"}}, status=502)
    with pytest.raises(VlpError) as caught:
        VlpClient(API, retries=0).analyze(png_bytes())
    assert (caught.value.code, caught.value.step, caught.value.exit_code) == ("VLM_FAILED", "vlm", 1)
    with pytest.raises(VlpError) as caught:  # nothing registered for this host: a connection error
        VlpClient("https://nowhere.example.com").job("j1")
    assert caught.value.code == "NETWORK_ERROR" and caught.value.status is None and caught.value.exit_code == 1


def test_api_gateways_own_error_body_gets_a_code_from_the_error_type(http):
    http.get(
        API + "/v1/jobs/j1",
        json={"message": "Forbidden"},
        status=403,
        headers={"x-amzn-ErrorType": "ForbiddenException"},
    )
    with pytest.raises(VlpError) as caught:
        VlpClient(API).job("j1")
    assert (caught.value.code, caught.value.message, caught.value.status) == ("FORBIDDEN", "Forbidden", 403)


def test_429_is_retried_after_retry_after(http):
    throttled = {"error": {"code": "THROTTLED", "message": "slow down", "retry_after": 3}}
    http.post(API + "/v1/analyze", json=throttled, status=429, headers={"Retry-After": "3"})
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    slept: list[float] = []
    result = VlpClient(API, sleep=slept.append).analyze(png_bytes())
    assert result.request_id == SEGMENT_RESULT["request_id"]
    assert len(http.calls) == 2 and len(slept) == 1 and 3 <= slept[0] < 3.5


def test_a_long_retry_after_is_not_waited_for(http):
    http.post(
        API + "/v1/analyze",
        json={"error": {"code": "VLM_UNAVAILABLE", "message": "starting", "retry_after": 120}},
        status=503,
        headers={"Retry-After": "120"},
    )
    slept: list[float] = []
    with pytest.raises(VlpError) as caught:
        VlpClient(API, sleep=slept.append).analyze(png_bytes())
    assert (caught.value.code, caught.value.retry_after, slept) == ("VLM_UNAVAILABLE", 120.0, [])


# ---- jobs ----
def test_wait_polls_with_backoff_honours_retry_after_and_reports_progress(http):
    url = API + "/v1/jobs/j1"
    http.get(url, json={"job_id": "j1", "status": "queued"})
    http.get(url, json={"job_id": "j1", "status": "running"}, headers={"Retry-After": "4"})
    http.get(url, json={"error": {"code": "THROTTLED", "message": "m"}}, status=429, headers={"Retry-After": "2"})
    http.get(url, json={"job_id": "j1", "status": "running"})
    http.get(url, json={"job_id": "j1", "status": "succeeded", "result": SEGMENT_RESULT})
    slept: list[float] = []
    seen: list[str] = []
    job = VlpClient(API, sleep=slept.append).wait("j1", progress=lambda j: seen.append(j.status), timeout=60)
    assert isinstance(job, Job) and job.status == "succeeded" and job.result is not None
    assert job.result.request_id == SEGMENT_RESULT["request_id"]
    assert seen == ["queued", "running", "running", "succeeded"]
    assert slept == [0.5, 4.0, 2.0, 0.5 * 1.5**3]


def test_a_failed_job_is_returned_and_raises_with_its_status(http):
    error = {"code": "INVALID_IMAGE", "message": "corrupt", "status": 400}
    http.get(API + "/v1/jobs/j2", json={"job_id": "j2", "status": "failed", "error": error})
    job = VlpClient(API).wait("j2")
    assert job.status == "failed" and job.error == error
    with pytest.raises(VlpError) as caught:
        job.raise_for_error()
    assert (caught.value.code, caught.value.status, caught.value.exit_code) == ("INVALID_IMAGE", 400, 2)


def test_wait_gives_up_after_its_timeout(http):
    http.get(API + "/v1/jobs/j3", json={"job_id": "j3", "status": "running"})
    with pytest.raises(VlpError) as caught:
        VlpClient(API, sleep=lambda _: None).wait("j3", timeout=0)
    assert caught.value.code == "WAIT_TIMEOUT" and "running" in caught.value.message and caught.value.exit_code == 1


def test_a_job_not_found_is_not_retried(http):
    http.get(API + "/v1/jobs/nope", json={"error": {"code": "JOB_NOT_FOUND", "message": "no job"}}, status=404)
    with pytest.raises(VlpError) as caught:
        VlpClient(API).wait("nope")
    assert caught.value.code == "JOB_NOT_FOUND" and len(http.calls) == 1


# ---- downloads ----
def test_download_writes_the_result_the_overlay_and_each_mask(http, tmp_path):
    files = {name: hashlib.sha256(name.encode()).digest() for name in ("mask-0", "mask-2", "overlay")}
    http.get(S3_URL + "results/r/mask-0.png?sig=0", body=files["mask-0"])
    http.get(S3_URL + "results/r/mask-2.png?sig=2", body=files["mask-2"])
    http.get(S3_URL + "results/r/overlay.png?sig=o", body=files["overlay"])
    written = VlpClient(API).download(AnalyzeResult(SEGMENT_RESULT), tmp_path / "out")
    assert sorted(p.name for p in written) == ["mask-0.png", "mask-2.png", "overlay.png", "result.json"]
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == SEGMENT_RESULT
    for name, data in files.items():
        assert (tmp_path / "out" / f"{name}.png").read_bytes() == data


def test_download_of_an_expired_url_says_so(http, tmp_path):
    http.get(S3_URL + "results/r/mask-0.png?sig=0", status=403)
    result = AnalyzeResult({**SEGMENT_RESULT, "overlay": None, "detections": SEGMENT_RESULT["detections"][:1]})
    with pytest.raises(VlpError) as caught:
        VlpClient(API).download(result, tmp_path)
    assert caught.value.code == "DOWNLOAD_FAILED" and caught.value.status == 403
    assert (tmp_path / "result.json").exists()


def test_the_inline_limit_is_the_apis():
    from vlp.api.models import MAX_INLINE_IMAGE_BYTES as API_LIMIT

    assert API_LIMIT == MAX_INLINE_IMAGE_BYTES
