"""Shared fixtures for the model-package tests (run in .venv-models: torch, transformers, ...)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
# What the package build copies into every model.tar.gz beside model.py (stacks/model_package_asset.py).
sys.path.insert(0, str(ROOT / "model_packages" / "shared"))

import djl_double  # noqa: E402 (after the sys.path set-up)

djl_double.install()


def load_package_module(package: str, module: str = "model"):
    """Import model_packages/<package>/<module>.py afresh under a unique name (each package has a model.py)."""
    path = ROOT / "model_packages" / package / f"{module}.py"
    name = f"vlp_test_{package}_{module}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    package_dir = str(path.parent)
    sys.path.insert(0, package_dir)  # a package's model.py may import its sibling modules
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(package_dir)
    return mod


@pytest.fixture
def djl():
    return djl_double
