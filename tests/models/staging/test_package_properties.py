"""Conventions every DJL package follows, so the hosting stack can deploy any of them the same way."""

from __future__ import annotations

import pytest

from stacks import constants as c
from stacks.serving_properties import PACKAGES_DIR as PACKAGES
from stacks.serving_properties import package_properties as properties


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_package_leaves_model_id_to_the_endpoint(role):
    props = properties(role)
    # The endpoint sets OPTION_MODEL_ID (weights prefix or hub id); a value here could shadow it.
    assert "option.model_id" not in props
    assert props["engine"] == "Python"
    assert props["option.entryPoint"] == "model.py"
    assert (PACKAGES / role / "model.py").is_file() and (PACKAGES / role / "requirements.txt").is_file()
