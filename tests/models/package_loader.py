"""Importing a model package's modules the way DJL does, for the tests and benchmarks: each package's model.py
under a name of its own, with the package folder on sys.path while it loads (a model.py imports its siblings).
The shared modules (model_packages/shared/, copied beside model.py in every model.tar.gz) must already be on
sys.path: tests/models/conftest.py puts them there."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_package_module(package: str, module: str = "model") -> ModuleType:
    """Import model_packages/<package>/<module>.py afresh under a unique name (each package has a model.py)."""
    path = ROOT / "model_packages" / package / f"{module}.py"
    name = f"vlp_test_{package}_{module}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    package_dir = str(path.parent)
    sys.path.insert(0, package_dir)  # a package's model.py may import its sibling modules
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(package_dir)
    return mod
