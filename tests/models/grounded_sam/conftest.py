from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import djl_double
import grounded_sam_helpers as helpers


@pytest.fixture(scope="session")
def grounded_sam_weights(tmp_path_factory) -> Path:
    return helpers.build(tmp_path_factory.mktemp("weights") / "grounded_sam")


@pytest.fixture(scope="session")
def grounded_sam(grounded_sam_weights):
    """The package's model.py, initialised once for the session (as a DJL worker is)."""
    module = helpers.load_package_module("grounded_sam")
    assert djl_double.initialise(module.handle, helpers.properties(grounded_sam_weights)) is None
    return module


@pytest.fixture(scope="session")
def small_image() -> str:
    return helpers.image_b64()
