"""Fixtures of the client's unit tests: HTTP is stubbed with `responses` (no sockets), AWS settings isolated."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import responses

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
