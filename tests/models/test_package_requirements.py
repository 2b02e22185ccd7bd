"""Each DJL package's requirements.txt is exactly the environment these tests run in, complete enough for pip's
hash-checking mode, and a worker refuses to start anywhere else (model_packages/shared/vlp_requirements.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest
import vlp_requirements
from packaging.markers import default_environment
from packaging.requirements import Requirement

from stacks import constants as c

ROOT = Path(__file__).resolve().parents[2]
CONTAINER_PROVIDED = {"torch"}  # requirements/djl-container.txt


def load_model_py(role: str) -> types.ModuleType:
    """model_packages/<role>/model.py imported afresh, its folder on sys.path as DJL puts it."""
    folder = ROOT / "model_packages" / role
    spec = importlib.util.spec_from_file_location(f"vlp_requirements_test_{role}", folder / "model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def pins(role: str) -> dict[str, str]:
    return vlp_requirements.read_pins(ROOT / "model_packages" / role / "requirements.txt")


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_the_tested_environment_is_what_the_package_pins(role):
    assert pins(role)
    assert vlp_requirements.mismatches(pins(role)) == []
    vlp_requirements.verify_installed(ROOT / "model_packages" / role)


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_the_pins_are_closed_under_dependencies(role):
    """pip installs requirements.txt in hash-checking mode: every dependency it would have to install must be
    pinned there too. torch is the container's, so what it alone needs is not."""
    pinned = set(pins(role))
    environment = default_environment()
    missing = set()
    for name in pinned:
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({**environment, "extra": ""}):
                continue
            dependency = re.sub(r"[-_.]+", "-", requirement.name).lower()
            if dependency not in pinned | CONTAINER_PROVIDED:
                missing.add(f"{dependency} (needed by {name})")
    assert not missing, f"{role}: unpinned dependencies {sorted(missing)}"


def test_a_drifted_environment_is_refused(monkeypatch, tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "transformers==5.23.0 \\\n    --hash=sha256:00\n# a comment\n"
        "not-installed-anywhere==1.0 \\\n    --hash=sha256:11\n"
    )
    real = metadata.version
    monkeypatch.setattr(
        vlp_requirements.metadata, "version", lambda name: "4.51.3" if name == "transformers" else real(name)
    )
    with pytest.raises(RuntimeError) as refused:
        vlp_requirements.verify_installed(tmp_path)
    assert "transformers==5.23.0 (installed: 4.51.3)" in str(refused.value)
    assert "not-installed-anywhere==1.0 (not installed)" in str(refused.value)
    with pytest.raises(FileNotFoundError):
        vlp_requirements.verify_installed(tmp_path / "nowhere")


def test_a_worker_does_not_start_on_untested_versions(monkeypatch):
    """The container's own transformers (e.g. LMI 0.33.0's 4.51.3) left in place by a failed pip install."""
    import djl_double

    real = metadata.version
    monkeypatch.setattr(
        vlp_requirements.metadata, "version", lambda name: "4.51.3" if name == "transformers" else real(name)
    )
    module = load_model_py("grounded_sam")
    with pytest.raises(RuntimeError, match=r"transformers==5\.23\.0 \(installed: 4\.51\.3\)"):
        djl_double.initialise(module.handle, {"model_id": "/nonexistent"})
