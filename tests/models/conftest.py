"""Shared fixtures for the model-package tests (run in .venv-models: torch, transformers, ...)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
# What the package build copies into every model.tar.gz beside model.py (stacks/model_package_asset.py).
sys.path.insert(0, str(ROOT / "model_packages" / "shared"))

import djl_double  # noqa: E402 (after the sys.path set-up)
from package_checks import one_torch_thread  # noqa: E402 (after the sys.path set-up)
from package_loader import load_package_module  # noqa: E402, F401 (the loader the package tests use)

djl_double.install()


@pytest.fixture
def djl():
    return djl_double


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Every package test runs tiny models: one intra-op thread (package_checks.one_torch_thread)."""
    with one_torch_thread():
        yield
