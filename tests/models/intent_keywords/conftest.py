from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import djl_double
import intent_keywords_helpers as helpers


@pytest.fixture(scope="session")
def intent_keywords_weights(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("weights") / "intent_keywords"
    root.mkdir()
    return helpers.build_weights(root)


@pytest.fixture(scope="session")
def intent_keywords(intent_keywords_weights):
    """The package's model.py, initialised once for the session (as a DJL worker is)."""
    module = helpers.load_package_module("intent_keywords")
    assert djl_double.initialise(module.handle, helpers.properties(intent_keywords_weights)) is None
    return module
