"""model_packages/shared/vlp_djl_support.py: the one place every DJL package learns where a model is (a staged
sub-folder, a local directory, a hub id, or its fallback) and what name to report for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vlp_djl_support import HUB_ID, display_name, model_id_fallback, resolve_model_source


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """A weights prefix as `make stage-weights` lays it out: one folder per component."""
    for component in ("grounding_dino", "sam"):
        (tmp_path / "weights" / component).mkdir(parents=True)
    return tmp_path / "weights"


def write_config(folder: Path, **values: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(values), encoding="utf-8")
    return folder


def test_a_staged_sub_folder_of_the_first_root_that_has_it(staged, tmp_path):
    package = tmp_path / "package"
    (package / "sam").mkdir(parents=True)
    assert resolve_model_source("sam", [staged, package]) == str(staged / "sam")
    assert resolve_model_source("sam", [None, package]) == str(package / "sam")
    assert resolve_model_source(str(staged / "sam"), []) == str(staged / "sam")  # an absolute directory


def test_a_hub_id_when_no_folder_has_the_name(staged):
    assert resolve_model_source("facebook/sam-vit-huge", [staged]) == "facebook/sam-vit-huge"
    assert resolve_model_source("org/name", [staged], fallback="other/model") == "org/name"  # named, not replaced


def test_a_bare_name_that_is_no_folder_takes_the_fallback_or_fails(staged, caplog):
    assert resolve_model_source("clip", [staged], fallback="openai/clip-vit-large-patch14") == (
        "openai/clip-vit-large-patch14"
    )
    assert "no 'clip' folder" in caplog.text
    assert resolve_model_source(None, [staged], fallback="x/y") == "x/y"
    with pytest.raises(FileNotFoundError, match=r"'clip'.*neither a local directory nor a hub id"):
        resolve_model_source("clip", [staged])
    with pytest.raises(ValueError, match="no model location"):
        resolve_model_source("", [staged])


def test_missing_absolute_directories_and_s3_locations_are_errors(staged):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model_source(str(staged / "missing"), [], fallback="x/y")
    with pytest.raises(ValueError, match="S3"):
        resolve_model_source("s3://bucket/weights/sam/", [staged])


def test_the_main_model_falls_back_to_model_id_itself(tmp_path):
    clip = write_config(tmp_path / "flat-clip", model_type="clip")
    assert model_id_fallback(None, "default/model") == "default/model"  # nothing configured
    assert model_id_fallback("IDEA-Research/grounding-dino-tiny", "x/y") == "IDEA-Research/grounding-dino-tiny"
    assert model_id_fallback(str(clip), "x/y") == str(clip)  # the weights staged flat, not in a sub-folder
    assert model_id_fallback(str(clip), "x/y", model_type="clip") == str(clip)
    assert model_id_fallback(str(clip), "x/y", model_type="blip") is None  # another model's weights
    assert model_id_fallback(str(tmp_path), "x/y") is None  # a staged prefix without the model: no silent default
    assert model_id_fallback("/nonexistent", "x/y") is None
    with pytest.raises(FileNotFoundError):
        resolve_model_source("grounding_dino", [tmp_path], fallback=model_id_fallback(str(tmp_path), "x/y"))


def test_the_reported_name(tmp_path):
    hub_saved = write_config(tmp_path / "saved", _name_or_path="openai/clip-vit-base-patch32")
    unnamed = write_config(tmp_path / "my-clip", _name_or_path=str(tmp_path / "somewhere"))
    assert display_name("configured/name", str(unnamed)) == "configured/name"
    assert display_name(None, "org/hub-model") == "org/hub-model"
    assert display_name(None, str(hub_saved)) == "openai/clip-vit-base-patch32"  # what the folder was saved from
    assert display_name("", str(unnamed)) == "my-clip"  # never a made-up hub id
    assert display_name(None, str(tmp_path / "no-config")) == str(tmp_path / "no-config")  # not a folder: as named
    assert HUB_ID.match("org/name") and not HUB_ID.match("gpt2") and not HUB_ID.match("/abs/path")
