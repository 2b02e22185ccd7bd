"""Fixtures of the client's unit tests: HTTP is stubbed with `responses` (no sockets), AWS settings isolated."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
import responses
from responses.matchers import json_params_matcher

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "client" / "src"))  # the package from the tree, installed or not
sys.path.insert(0, str(Path(__file__).resolve().parent))

API = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/live"
S3_URL = "https://vlp-dev-requests-123456789012.s3.amazonaws.com/"
ACCESS_KEY = "AKIAUNITTESTKEY00001"
SECRET_KEY = "unit-test-secret-key-0000000000000000000"


@pytest.fixture(autouse=True)
def _isolated_aws(monkeypatch, tmp_path):
    """No real AWS configuration, credentials or local-mode state reach a test."""
    import os

    for name in list(os.environ):
        if name.startswith(("AWS_", "VLP_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("VLP_LOCAL_DIR", str(tmp_path / "no-local-mode"))


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def png_bytes(size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    from PIL import Image

    image = Image.effect_noise(size, 80).convert("RGB") if noise else Image.new("RGB", size, (200, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def queue_job(
    http: responses.RequestsMock, job_id: str, result: dict[str, Any] | None = None, *, running: bool = True
) -> None:
    """POST /v1/jobs queues job `job_id`; with `result`, GET answers running (once, when `running`), then succeeded
    with `result`. (The command line's client sleeps for real between polls: its tests skip the running answer.)"""
    status_url = f"/v1/jobs/{job_id}"
    http.post(API + "/v1/jobs", json={"job_id": job_id, "status": "queued", "status_url": status_url}, status=202)
    if result is None:
        return
    if running:
        http.get(API + status_url, json={"job_id": job_id, "status": "running"})
    http.get(API + status_url, json={"job_id": job_id, "status": "succeeded", "result": result})


def stub_upload(http: responses.RequestsMock, form: dict[str, Any], request: dict[str, str] | None = None) -> None:
    """POST /v1/uploads answers the presigned `form` (only to a body equal to `request`, when given); S3 takes the
    file."""
    match = [json_params_matcher(request)] if request else []
    http.post(API + "/v1/uploads", json=form, status=201, match=match)
    http.post(S3_URL, status=204)


@pytest.fixture
def image(tmp_path: Path) -> str:
    """A PNG file for the command line's IMAGE argument."""
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes())
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`vlp --api-url API --auth none ARGV...`: its exit status, stdout and stderr."""
    from vlp_client.cli import main

    status = main(["--api-url", API, "--auth", "none", *argv])
    out, err = capsys.readouterr()
    return status, out, err
