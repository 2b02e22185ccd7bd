from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clip_interrogator_helpers as helpers
import djl_double
from package_checks import one_torch_thread


@pytest.fixture(scope="session")
def terms_dir(tmp_path_factory) -> Path:
    return helpers.write_terms(tmp_path_factory.mktemp("terms"))


@pytest.fixture(scope="session")
def staged(tmp_path_factory, terms_dir) -> Path:
    """Weights staged as in S3, with the term embeddings precomputed by the package's own function."""
    with one_torch_thread():
        root = helpers.stage_weights(tmp_path_factory.mktemp("weights") / "clip_interrogator")
        terms = helpers.load_package_module(module="clip_interrogator_terms")
        terms.precompute_term_embeddings(root, terms_dir=terms_dir, clip_model_name=helpers.CLIP_NAME)
    return root


@pytest.fixture
def make_interrogator(staged, terms_dir, tmp_path):
    """A fresh worker: model.py imported anew and initialised with `properties(...)` + overrides."""

    def make(root: Path = staged, *, terms: Path = terms_dir, cache: Path | None = None, **extra):
        module = helpers.load_package_module()
        props = helpers.properties(root, terms, cache or tmp_path / "cache", **extra)
        assert djl_double.initialise(module.handle, props) is None
        return module

    return make


@pytest.fixture(scope="session")
def interrogator(staged, terms_dir, tmp_path_factory):
    """One worker for the whole session, as DJL keeps one."""
    module = helpers.load_package_module()
    props = helpers.properties(staged, terms_dir, tmp_path_factory.mktemp("cache"))
    with one_torch_thread():
        assert djl_double.initialise(module.handle, props) is None
    return module
