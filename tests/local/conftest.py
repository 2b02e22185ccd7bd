"""The local stack, started once per test session on free ports (local/up.py's LocalService), and its clients."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "lambdas"))  # vlp_media: the test media both batteries use

from vlp_local_kit import (  # noqa: E402 (after the sys.path set-up)
    READ_TIMEOUT_SECONDS,
    Api,
    Models,
    image_bytes,
    speech_wav,
)

from local.up import LocalService  # noqa: E402 (after the sys.path set-up)


@pytest.fixture(scope="session")
def stack():
    state = Path(tempfile.mkdtemp(prefix="vlp-local-test-"))
    local = LocalService(
        state_dir=state,
        ports=dict.fromkeys(("api", "s3", "sagemaker", "lambda", "sfn"), 0),
        env_overrides={"understand:SAGEMAKER_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS)},
    )
    local.start(timeout=900)
    yield local
    local.stop()
    if os.environ.get("VLP_LOCAL_KEEP_LOGS") != "1":
        import shutil

        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def api(stack) -> Api:
    return Api.at(stack.api_url)


@pytest.fixture(scope="session")
def models(stack) -> Models:
    return Models(stack.url("sagemaker"))


@pytest.fixture(autouse=True)
def _clean_faults(request):
    """No fault or latency leaks from one test into the next."""
    yield
    if "stack" in request.fixturenames:
        Models(request.getfixturevalue("stack").url("sagemaker")).reset()


@pytest.fixture(scope="session")
def s3(stack):
    import boto3
    from botocore.config import Config

    env = stack.aws_environment()
    return boto3.client(
        "s3",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4"),
    )


@pytest.fixture(scope="session")
def bucket(stack) -> str:
    return stack.deployment.requests_bucket


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return image_bytes()


@pytest.fixture(scope="session")
def image_key(api, jpeg) -> str:
    return api.upload(jpeg)


@pytest.fixture(scope="session")
def audio_key(api) -> str:
    return api.upload(speech_wav(2.0), kind="audio", content_type="audio/wav")
