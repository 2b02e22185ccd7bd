"""make packages' vendored dependencies: a package built with build/vendor/<name>/ carries it as vendor/ with the pins
under vendor/requirements.txt (no top-level requirements.txt, so DJL installs nothing at start-up); the worker puts
vendor/ first on sys.path and checks the pins against it; a half-finished vendor folder is ignored."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from stacks.model_package_asset import PACKAGES_DIR, SHARED_DIR, VENDOR_MARKER, build_package

sys.path.insert(0, str(SHARED_DIR))
import vlp_requirements
import vlp_vendor

PACKAGE = "intent_keywords"


def _fake_vendor(root: Path, complete: bool = True) -> Path:
    """A vendor folder as `uv pip install --target` leaves it: a module, its dist-info, console scripts."""
    folder = root / PACKAGE
    (folder / "tinylib").mkdir(parents=True)
    (folder / "tinylib" / "__init__.py").write_text("VALUE = 42\n")
    (folder / "tinylib-1.2.3.dist-info").mkdir()
    (folder / "tinylib-1.2.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tinylib\nVersion: 1.2.3\n"
    )
    (folder / "bin").mkdir()
    (folder / "bin" / "tinylib-cli").write_text("#!/usr/bin/python\n")
    (folder / "tinylib" / "__pycache__").mkdir()
    (folder / "tinylib" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    if complete:
        (folder / VENDOR_MARKER).write_text("3.11\n")
    return root


def _names(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as tar:
        return set(tar.getnames())


def test_a_vendored_package_carries_vendor_and_no_top_level_requirements(tmp_path):
    vendor = _fake_vendor(tmp_path / "vendor")
    first = build_package(PACKAGE, tmp_path / "a", vendor_dir=vendor)
    second = build_package(PACKAGE, tmp_path / "b", vendor_dir=vendor)
    assert first.read_bytes() == second.read_bytes()
    names = _names(first)
    assert {"vendor/tinylib/__init__.py", "vendor/tinylib-1.2.3.dist-info/METADATA", "vendor/.vendored"} <= names
    assert "requirements.txt" not in names and "vendor/requirements.txt" in names
    assert not any(n.startswith("vendor/bin/") or n.endswith(".pyc") for n in names)
    with tarfile.open(first) as tar:
        pins = tar.extractfile("vendor/requirements.txt").read().decode()  # type: ignore[union-attr]  # a regular file: extractfile returns it
    assert pins == (PACKAGES_DIR / PACKAGE / "requirements.txt").read_text()


def test_without_a_complete_vendor_folder_the_package_keeps_requirements_txt(tmp_path):
    vendor = _fake_vendor(tmp_path / "vendor", complete=False)
    names = _names(build_package(PACKAGE, tmp_path / "out", vendor_dir=vendor))
    assert "requirements.txt" in names and not any(n.startswith("vendor/") for n in names)
    assert _names(build_package(PACKAGE, tmp_path / "none", vendor_dir=None)) == names


def test_the_worker_puts_vendor_first_and_verifies_the_pins_there(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    vendor = package / "vendor"
    _fake_vendor(tmp_path / "v")
    package.mkdir()
    (tmp_path / "v" / PACKAGE).rename(vendor)
    (vendor / "requirements.txt").write_text("tinylib==1.2.3 \\\n    --hash=sha256:00\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert vlp_vendor.use_vendor(package, version=(3, 11)) == vendor
    assert sys.path[0] == str(vendor)
    vlp_requirements.verify_installed(package)  # tinylib 1.2.3 found through vendor/
    (vendor / "requirements.txt").write_text("tinylib==9.9.9\n")
    with pytest.raises(RuntimeError, match=r"tinylib==9\.9\.9 \(installed: 1\.2\.3\)"):
        vlp_requirements.verify_installed(package)


def test_the_worker_refuses_wheels_vendored_for_another_python(tmp_path):
    vendor = tmp_path / "pkg" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / VENDOR_MARKER).write_text("3.11\n")
    with pytest.raises(
        RuntimeError, match=r"vendored for CPython 3\.11, but this container runs 3\.12: .*LMI_PYTHON=3\.12"
    ):
        vlp_vendor.use_vendor(tmp_path / "pkg", version=(3, 12))
    assert vlp_vendor.use_vendor(tmp_path / "nothing", version=(3, 12)) is None


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGES_DIR.glob("*/serving.properties")))
def test_every_model_imports_vlp_vendor_before_any_third_party_module(package):
    lines = [
        line
        for line in (PACKAGES_DIR / package / "model.py").read_text().splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    ]
    assert lines[0].startswith("import vlp_vendor")
