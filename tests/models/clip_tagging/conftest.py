from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clip_tagging_helpers as helpers
import djl_double
import tiny_clip
from package_checks import one_torch_thread


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """A tiny random-weight CLIP saved as `make stage-weights` saves the real one (model + processor)."""
    with one_torch_thread():
        return tiny_clip.save_tiny_clip(tmp_path_factory.mktemp("weights") / helpers.MODEL_NAME)


@pytest.fixture
def make_tagger(clip_dir):
    """A fresh worker: the package's model.py imported anew and initialised with `properties(...)` + overrides."""

    def make(**extra):
        module = helpers.load_package_module()
        assert djl_double.initialise(module.handle, helpers.properties(clip_dir, **extra)) is None
        return module

    return make


@pytest.fixture(scope="session")
def tagger(clip_dir):
    """One worker for the whole session, as DJL keeps one (tests that need a clean cache use make_tagger)."""
    module = helpers.load_package_module()
    with one_torch_thread():
        assert djl_double.initialise(module.handle, helpers.properties(clip_dir)) is None
    return module


@pytest.fixture(scope="session")
def image_png() -> bytes:
    return tiny_clip.image_bytes((64, 48), "PNG", seed=1)
