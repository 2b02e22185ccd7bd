"""The client and the installed `vlp` command against local mode, in its three auth modes.

One local stack per session (conftest's `stack`, --auth none); the iam and api_key modes are the same backend
behind a second and a third API process started with the command local.up builds for `--auth iam` / `--auth
api_key` (LocalService.api_command: it also writes run/credentials.json, the credentials `make up` prints). Auth is
all in the API process, so this is what `make up LOCAL_ARGS='--auth ...'` runs, without two more model servers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from vlp_local_kit import ApiProcess, image_bytes, speech_wav

from local.common import ROOT, free_port

VLP = ROOT / ".venv" / "bin" / "vlp"
SEGMENT = ["--option", "box_threshold=0", "--option", "text_threshold=0", "--option", "max_detections=3"]
API_KEY = "local-test-api-key-0123456789"


@pytest.fixture(scope="module")
def iam_api(stack, tmp_path_factory):
    api = ApiProcess(stack, tmp_path_factory.mktemp("iam") / ".local", "iam")
    yield api
    api.stop()


@pytest.fixture(scope="module")
def key_api(stack, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "api-keys.json"
    keys.write_text(json.dumps([API_KEY, {"id": "second", "value": "another-local-key-0123456789"}]))
    api = ApiProcess(stack, tmp_path_factory.mktemp("key") / ".local", "api_key", api_keys=keys)
    yield api
    api.stop()


@pytest.fixture(scope="module")
def small_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("media") / "small.jpg"
    path.write_bytes(image_bytes())
    return path


@pytest.fixture(scope="module")
def large_image(tmp_path_factory) -> Path:
    """Above the inline limit: the client uploads it (POST /v1/uploads, presigned POST) first."""
    from PIL import Image, ImageDraw

    image = Image.effect_noise((900, 700), 60).convert("RGB")
    ImageDraw.Draw(image).rectangle((200, 150, 600, 500), fill=(220, 30, 30))
    path = tmp_path_factory.mktemp("media") / "large.png"
    image.save(path, format="PNG")
    assert path.stat().st_size > 160 * 1024
    return path


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("media") / "question.wav"
    path.write_bytes(speech_wav(1.5))
    return path


def base_env(**extra: str) -> dict[str, str]:
    """No AWS configuration of the machine's, no local-mode state of the checkout's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VLP_"))}
    env.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        VLP_LOCAL_DIR=str(ROOT / ".local-none-for-tests"),
    )
    env.update(extra)
    return env


def iam_env(api: ApiProcess, secret: str | None = None) -> dict[str, str]:
    credentials = api.credentials
    return base_env(
        AWS_ACCESS_KEY_ID=credentials["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=secret or credentials["aws_secret_access_key"],
    )


def vlp(*args: str | Path, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None):
    if not VLP.exists():
        pytest.fail(f"{VLP} is missing: `make install` installs the client into .venv")
    return subprocess.run(
        [str(VLP), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env or base_env(),
        cwd=cwd or ROOT,
        timeout=300,
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def check_segment_files(out: Path, width: int, height: int) -> dict:
    from PIL import Image

    result = json.loads((out / "result.json").read_text())
    assert result["task"] == "segment"
    assert 1 <= len(result["detections"]) <= 3
    for index, detection in enumerate(result["detections"]):
        assert detection["mask"]["url"]
        mask = Image.open(out / f"mask-{index}.png")
        assert mask.size == (width, height)  # the original image's size
    names = {p.name for p in out.iterdir()}
    assert names >= {"result.json"} | {f"mask-{i}.png" for i in range(len(result["detections"]))}
    assert result["overlay"]["key"].endswith("overlay.png")  # drawn whenever there are detections
    assert Image.open(out / "overlay.png").size == (width, height)
    return result


# ---- the CLI, auth none ----
def test_cli_analyze_segment_uploads_a_large_image_and_writes_the_files(stack, large_image, tmp_path):
    out = tmp_path / "out"
    result = ok(
        vlp(
            "--api-url",
            stack.api_url,
            "analyze",
            large_image,
            "--text",
            "segment the red square",
            "--task",
            "segment",
            *SEGMENT,
            "--out",
            out,
        )
    )
    assert "task segment" in result.stdout and "detections" in result.stdout and "wrote" in result.stdout
    body = check_segment_files(out, 900, 700)
    assert body["random_weights"] is True and "random-weight models" in result.stdout
    assert body["image"]["width"] == 900


def test_cli_finds_local_mode_without_api_url(stack, small_image):
    """`make up` leaves .local/run/state.json and credentials.json: vlp finds the URL and the auth mode there."""
    result = ok(vlp("analyze", small_image, "--json", env=base_env(VLP_LOCAL_DIR=str(stack.state_dir))))
    assert json.loads(result.stdout)["task"] == "describe"


def test_cli_bad_request_exits_2_with_the_code(stack, small_image):
    result = vlp("--api-url", stack.api_url, "analyze", small_image, "--task", "tag")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error MISSING_LABELS: ") and "(request id " in result.stderr
    result = vlp("--api-url", stack.api_url, "analyze", small_image, "--option", "max_new_tokens=5000")
    assert result.returncode == 2 and result.stderr.startswith("error INVALID_REQUEST: ")


def test_cli_network_failure_exits_1(small_image):
    result = vlp("--api-url", f"http://127.0.0.1:{free_port()}", "analyze", small_image)
    assert result.returncode == 1 and result.stderr.startswith("error NETWORK_ERROR: ")


def test_cli_chat_over_stdin(stack, small_image, spoken):
    session = f"what is in this picture?\nand what colour is it?\n/audio {spoken}\n/quit\nnot read\n"
    result = ok(vlp("--api-url", stack.api_url, "chat", small_image, "--task", "describe", stdin=session))
    replies = [line for line in result.stdout.splitlines() if line.startswith("assistant> ")]
    assert len(replies) == 3, result.stdout + result.stderr
    assert all(len(reply) > len("assistant> ") for reply in replies)


# ---- the CLI, auth iam (the printed credentials through botocore's chain) ----
def test_cli_iam_job_submit_wait_and_out(iam_api, small_image, tmp_path):
    out = tmp_path / "job"
    result = ok(
        vlp(
            "--api-url",
            iam_api.url,
            "--auth",
            "iam",
            "job",
            "submit",
            small_image,
            "--task",
            "tag",
            "--label",
            "red dress",
            "--label",
            "blue jeans",
            "--wait",
            "--out",
            out,
            env=iam_env(iam_api),
        )
    )
    assert "tags" in result.stdout and "job " in result.stderr
    body = json.loads((out / "result.json").read_text())
    assert body["task"] == "tag" and {t["label"] for t in body["tags"]} <= {"red dress", "blue jeans"}


def test_cli_iam_job_status_and_wait(iam_api, small_image, tmp_path):
    env = iam_env(iam_api)
    submitted = ok(
        vlp("--api-url", iam_api.url, "--auth", "iam", "job", "submit", small_image, "--text", "hi", env=env)
    )
    words = submitted.stdout.split()
    assert words[0] == "job" and words[2] == "queued", submitted.stdout
    job_id = words[1]
    status = ok(vlp("--api-url", iam_api.url, "--auth", "iam", "job", "status", job_id, env=env))
    assert status.stdout.startswith(f"job {job_id} ")
    assert status.stdout.split()[2] in ("queued", "running", "succeeded")
    waited = ok(
        vlp("--api-url", iam_api.url, "--auth", "iam", "job", "wait", job_id, "--json", "--out", tmp_path, env=env)
    )
    assert json.loads(waited.stdout)["request_id"] == job_id
    assert json.loads((tmp_path / "result.json").read_text())["request_id"] == job_id


def test_cli_iam_finds_local_modes_credentials(iam_api, small_image):
    """Without --api-url and without AWS credentials: local mode's URL, auth mode and generated credentials."""
    result = ok(vlp("analyze", small_image, "--json", env=base_env(VLP_LOCAL_DIR=str(iam_api.view.state_dir))))
    assert json.loads(result.stdout)["task"] == "describe"


def test_cli_iam_wrongly_signed_or_unsigned_is_403_exit_2(iam_api, small_image):
    wrong = vlp("--api-url", iam_api.url, "--auth", "iam", "analyze", small_image, env=iam_env(iam_api, "x" * 40))
    assert wrong.returncode == 2
    assert wrong.stderr.startswith(
        "error INVALID_SIGNATURE: The request signature we calculated does not match the signature you provided."
    )
    unsigned = vlp("--api-url", iam_api.url, "--auth", "none", "analyze", small_image)
    assert unsigned.returncode == 2 and unsigned.stderr.startswith("error MISSING_AUTHENTICATION_TOKEN: ")


# ---- the CLI, auth api_key ----
def test_cli_api_key(key_api, small_image):
    result = ok(vlp("--api-url", key_api.url, "--api-key", API_KEY, "analyze", small_image, "--json"))
    assert json.loads(result.stdout)["task"] == "describe"
    found = ok(vlp("analyze", small_image, "--json", env=base_env(VLP_LOCAL_DIR=str(key_api.view.state_dir))))
    assert json.loads(found.stdout)["task"] == "describe"
    wrong = vlp("--api-url", key_api.url, "--api-key", "not-the-key-0123456789", "analyze", small_image)
    assert (wrong.returncode, wrong.stderr.strip()[:30]) == (2, "error INVALID_API_KEY: Forbidd")


def test_cli_idempotency_key_is_scoped_to_the_signed_caller(iam_api, key_api, small_image):
    """The same key and body give the same job for one caller (the identity local auth put into the event), and
    another job for another caller; the same key with another body is refused."""
    key = f"order-{time.time_ns()}"
    signed = ["--api-url", iam_api.url, "--auth", "iam", "job", "submit", small_image, "--idempotency-key", key]
    first = ok(vlp(*signed, "--text", "hi", env=iam_env(iam_api))).stdout.split()[1]
    again = ok(vlp(*signed, "--text", "hi", env=iam_env(iam_api))).stdout.split()[1]
    assert again == first
    other = ok(vlp("--api-url", key_api.url, "--api-key", API_KEY, *signed[4:], "--text", "hi")).stdout.split()[1]
    assert other != first
    reused = vlp(*signed, "--text", "another body", env=iam_env(iam_api))
    assert reused.returncode == 2 and reused.stderr.startswith("error IDEMPOTENCY_KEY_REUSED: ")


# ---- the Python client in each mode ----
@pytest.mark.parametrize("mode", ["none", "iam", "api_key"])
def test_client_analyze_job_and_download(mode, stack, iam_api, key_api, small_image, tmp_path):
    sys.path.insert(0, str(ROOT / "client" / "src"))
    from vlp_client import VlpClient, VlpError

    if mode == "iam":
        credentials = iam_api.credentials
        client = VlpClient(
            iam_api.url,
            auth="iam",
            credentials=(credentials["aws_access_key_id"], credentials["aws_secret_access_key"]),
        )
    elif mode == "api_key":
        client = VlpClient(key_api.url, auth="api_key", api_key=API_KEY)
    else:
        client = VlpClient(stack.api_url)
    result = client.analyze(
        small_image.read_bytes(),
        text="outline the dog",
        task="segment",
        options={
            "box_threshold": 0.0,
            "text_threshold": 0.0,
            "max_detections": 2,
        },
    )
    assert result.task == "segment" and 1 <= len(result.detections) <= 2 and result.random_weights
    written = client.download(result, tmp_path / "analyze")
    assert {p.name for p in written} >= {"result.json", "mask-0.png"}
    job = client.submit_job(small_image, task="prompt")
    seen: list[str] = []
    done = client.wait(job.job_id, progress=lambda j: seen.append(j.status), timeout=120)
    assert done.status == "succeeded" and done.result is not None and done.result.prompt
    assert seen[-1] == "succeeded"
    with pytest.raises(VlpError) as caught:
        client.job("00000000-0000-4000-8000-000000000000")
    assert caught.value.code == "JOB_NOT_FOUND" and caught.value.status == 404 and caught.value.request_id


def test_refusals_have_the_clouds_403_body(iam_api, key_api):
    for url, headers in ((iam_api.url, {}), (key_api.url, {"x-api-key": "nope"})):
        response = requests.post(url + "/v1/analyze", json={}, headers=headers, timeout=30)
        assert response.status_code == 403
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
        assert body["error"]["request_id"] == response.headers["x-amzn-RequestId"]
        assert response.headers["x-amzn-ErrorType"] in ("MissingAuthenticationTokenException", "ForbiddenException")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)")
def test_curl_aws_sigv4_as_documented(iam_api, small_image):
    """docs/api.md's signed-call example, with curl's own SigV4 signer (not botocore's)."""
    import base64

    credentials = iam_api.credentials
    image = base64.b64encode(small_image.read_bytes()).decode()
    body = json.dumps({"image_base64": image, "text": "What is in this picture?", "task": "describe"})
    command = [
        "curl", "-sS", "--fail-with-body",
        "--aws-sigv4", "aws:amz:us-east-1:execute-api",
        "--user", f"{credentials['aws_access_key_id']}:{credentials['aws_secret_access_key']}",
        "-H", "content-type: application/json",
        "--data-binary", "@-",
        f"{iam_api.url}/live/v1/analyze",
    ]  # fmt: skip
    result = subprocess.run(command, input=body, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["task"] == "describe"
    wrong = [part.replace(credentials["aws_secret_access_key"], "y" * 40) for part in command]
    result = subprocess.run(wrong, input=body, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and json.loads(result.stdout)["error"]["code"] == "INVALID_SIGNATURE"
