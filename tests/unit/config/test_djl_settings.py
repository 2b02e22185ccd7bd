"""DJL roles: config/<env>.yaml is the one source of a package's per-environment options.

DJL Serving reads a package's serving.properties first and takes an OPTION_<NAME> environment variable only for an
option the file does not set (ModelInfo in deepjavalibrary/djl-serving), so an option is either fixed by the
package or configured here, never both."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stacks import constants as c
from stacks.config import CONFIG_DIR, ROLE_DEFAULTS, ConfigError, DjlConfig, ModelConfig, load_all, load_config
from stacks.model_environment import djl_environment
from stacks.serving_properties import package_options

ROOT = Path(__file__).resolve().parents[3]
DEV = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
CONFIGS = load_all()


def env_options(env: dict[str, str]) -> dict[str, str]:
    """OPTION_<NAME> variables as DJL turns them into options: the name lower-cased."""
    return {k.removeprefix("OPTION_").lower(): v for k, v in env.items() if k.startswith("OPTION_")}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: config.name)
@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_no_option_the_stack_sets_is_fixed_by_the_package(config, role):
    options = env_options(djl_environment(getattr(config.models, role), weights_uri=f"s3://bucket/weights/{role}/"))
    fixed = package_options(role)
    assert {"model_id", "model_name", "dtype"} <= set(options)
    assert not set(options) & set(fixed), f"serving.properties would shadow {sorted(set(options) & set(fixed))}"
    assert fixed["entryPoint"] == "model.py" and fixed["rolling_batch"] == "disable"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: config.name)
@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_configured_values_become_option_variables(config, role):
    model = getattr(config.models, role)
    env = djl_environment(model, weights_uri=f"s3://bucket/weights/{role}/")
    assert env["OPTION_MODEL_ID"] == f"s3://bucket/weights/{role}/"
    assert env["OPTION_MODEL_NAME"] == model.model_id
    assert env["OPTION_DTYPE"] == model.djl.dtype == "fp16"
    for name, value in model.djl.option_values().items():
        assert env[c.djl_option_env_var(name)] == value
    assert env[c.ENV_SERVING_FAIL_FAST] == "true"
    assert "OPTION_ENGINE" not in env  # serving.properties fixes engine=Python


def test_secondary_model_names_and_tunables_are_configured_per_role():
    prod = {config.name: config for config in CONFIGS}["prod"].models
    assert prod.grounded_sam.djl.options["sam_model_name"] == "facebook/sam-vit-huge"
    assert prod.intent_keywords.djl.options["keyword_model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert prod.clip_interrogator.djl.options["caption_model_name"] == "Salesforce/blip-image-captioning-large"
    assert prod.clip_tagging.djl.option_values()["label_cache_size"] == "100000"


def test_dtype_follows_the_instance_unless_configured():
    data = {**ROLE_DEFAULTS["intent_keywords"], "weights": {"s3_prefix": "weights/intent_keywords/"}}
    data = {**data, "djl": {}}
    gpu = ModelConfig.model_validate(data)
    cpu = ModelConfig.model_validate({**data, "instance_type": "ml.m5.xlarge"})
    bf16 = ModelConfig.model_validate({**data, "djl": {"dtype": "bf16"}})
    assert djl_environment(gpu, weights_uri=None)["OPTION_DTYPE"] == "fp16"
    assert djl_environment(cpu, weights_uri=None)["OPTION_DTYPE"] == "fp32"
    assert djl_environment(bf16, weights_uri=None)["OPTION_DTYPE"] == "bf16"
    assert djl_environment(gpu, weights_uri=None)["OPTION_MODEL_ID"] == "MoritzLaurer/deberta-v3-base-zeroshot-v2.0"


def test_option_values_are_the_strings_djl_hands_the_handler():
    djl = DjlConfig(options={"flag": True, "off": False, "ratio": 0.25, "count": 3, "name": "x/y"})
    assert djl.option_values() == {"flag": "true", "off": "false", "ratio": "0.25", "count": "3", "name": "x/y"}


def _error(tmp_path: Path, mutate) -> str:
    data = copy.deepcopy(DEV)
    mutate(data)
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message and "dev.yaml" in message
    return message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["models"]["clip_tagging"]["djl"].update(options={"max_labels": 5}),
            "clip_tagging.djl.options.max_labels: model_packages/clip_tagging/serving.properties sets "
            "option.max_labels",
        ),
        (
            lambda d: d["models"]["grounded_sam"]["djl"].update(options={"model_name": "x"}),
            "'model_name' is set by the stack from model_id",
        ),
        (
            lambda d: d["models"]["grounded_sam"]["djl"].update(options={"dtype": "fp32"}),
            "'dtype' is set by the stack from djl.dtype",
        ),
        (lambda d: d["models"]["clip_tagging"]["djl"].update(dtype="int8"), "djl.dtype"),
        (lambda d: d["models"]["clip_tagging"]["djl"].update(options={"Label_Cache": 1}), "djl.options.Label_Cache"),
        (
            lambda d: d["models"]["intent_keywords"].update(environment={"OPTION_DTYPE": "fp32"}),
            "intent_keywords.environment.OPTION_DTYPE: set DJL options under intent_keywords.djl",
        ),
        (lambda d: d["models"]["vlm"].update(djl={"dtype": "fp16"}), "vlm.djl: DJL settings apply only to"),
    ],
)
def test_settings_that_would_not_take_effect_are_refused(tmp_path, mutate, expected):
    assert expected in _error(tmp_path, mutate)


def test_an_option_the_package_leaves_open_is_accepted(tmp_path):
    data = copy.deepcopy(DEV)
    data["models"]["clip_tagging"]["djl"] = {"dtype": "bf16", "options": {"label_cache_size": 5000}}
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    model = load_config(path).models.clip_tagging
    env = djl_environment(model, weights_uri=None)
    assert (env["OPTION_DTYPE"], env["OPTION_LABEL_CACHE_SIZE"]) == ("bf16", "5000")
    assert env["OPTION_TEXT_BATCH_SIZE"] == "256"  # the role default is kept beside the override
