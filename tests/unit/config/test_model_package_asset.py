"""DJL packages become deterministic model.tar.gz files carrying the shared modules beside model.py."""

from __future__ import annotations

import tarfile

import pytest

from stacks import constants as c
from stacks.model_package_asset import build_package


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_package_tarball_is_complete_and_deterministic(role, tmp_path):
    first = build_package(role, tmp_path / "a", vendor_dir=None).read_bytes()
    second = build_package(role, tmp_path / "b", vendor_dir=None).read_bytes()
    assert first == second, "same sources must give the same bytes (and the same asset hash)"
    with tarfile.open(tmp_path / "a" / role / "model.tar.gz") as tar:
        names = set(tar.getnames())
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert {"model.py", "serving.properties", "requirements.txt", "vlp_djl_support.py", "vlp_hub_token.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_missing_package_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.py is missing"):
        build_package("no_such_package", tmp_path)
