from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import djl_double
import restyle_helpers as helpers


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads on a busy machine; restore the setting afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def sdxl_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helpers.save_tiny_sdxl(tmp_path_factory.mktemp("weights") / "restyle")


@pytest.fixture(scope="session")
def s3() -> Iterator[Any]:
    """A moto S3 with the requests bucket, for the whole session (the worker keeps its client)."""
    import boto3
    from moto import mock_aws

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=helpers.BUCKET)
        yield client
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def restyle(sdxl_weights: Path, s3: Any) -> Any:
    """The package's model.py, initialised once for the session (as a DJL worker is), its S3 client injected."""
    module = helpers.load_package_module()
    module._service.s3 = s3
    assert djl_double.initialise(module.handle, helpers.properties(sdxl_weights)) is None
    return module


@pytest.fixture(scope="session")
def image_ref(s3: Any) -> dict:
    return helpers.put_image(s3, "inputs/caller/req-1/image.jpg", (64, 64), "JPEG", seed=1)
