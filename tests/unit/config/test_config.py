"""Config validation: every bad case fails with one line naming the file, the field and the reason."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stacks import constants as c
from stacks.config import CONFIG_DIR, ConfigError, load_all, load_config

DEV = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())


def write(tmp_path: Path, data: dict, name: str = "dev") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def error_for(tmp_path: Path, mutate) -> str:
    data = copy.deepcopy(DEV)
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, data))
    message = str(caught.value)
    assert "\n" not in message, "the error must be one line"
    assert message.startswith(str(tmp_path / "dev.yaml")) or "dev.yaml" in message
    return message


def test_shipped_environments_load():
    configs = {config.name: config for config in load_all()}
    assert set(configs) >= {"dev", "prod"}
    prod = configs["prod"]
    # the design's model table
    assert prod.models.vlm.model_id == "HuggingFaceM4/idefics-9b-instruct"
    assert prod.models.vlm.instance_type == "ml.g5.12xlarge"
    assert prod.models.vlm.gpu_count == 4
    assert prod.models.llm.model_id == "meta-llama/Llama-2-7b-chat-hf"
    assert all(model.min_instances >= 1 for _, model in prod.models.items())
    assert all(model.scaling.scale_to_zero for _, model in configs["dev"].models.items())


def test_role_defaults_fill_unset_fields(tmp_path):
    data = copy.deepcopy(DEV)
    data["models"] = {role: {"enabled": False} for role in c.MODEL_ROLES}
    data["models"]["asr"] = {"weights": {"hub_id": "Systran/faster-whisper-large-v3"}}
    config = load_config(write(tmp_path, data))
    assert config.models.asr.instance_type == "ml.g5.xlarge"
    assert config.models.asr.weights.hub_id == "Systran/faster-whisper-large-v3"
    assert [role for role, _ in config.models.enabled()] == ["asr"]


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d.update(colour="blue"), "colour", "unknown field"),
        (lambda d: d["models"]["vlm"].update(gpu_count=2), "models.vlm.gpu_count", "unknown field"),
        (
            lambda d: d["models"]["vlm"].update(instance_type="g5.2xlarge"),
            "models.vlm.instance_type",
            "not a SageMaker instance type",
        ),
        (
            lambda d: d["models"]["vlm"].update(instance_type="ml.g5.huge"),
            "models.vlm.instance_type",
            "not a SageMaker instance type",
        ),
        (
            lambda d: d["models"]["llm"].update(min_instances=3, max_instances=2, scaling={"target": 4}),
            "models.llm",
            "min_instances (3) is above max_instances (2)",
        ),
        (
            lambda d: d["models"]["vlm"].update(tgi={"max_input_tokens": 4096, "max_total_tokens": 4096}),
            "models.vlm.tgi",
            "max_input_tokens (4096) must be below max_total_tokens (4096)",
        ),
        (lambda d: d["models"]["vlm"].update(gpus=4), "models.vlm", "gpus=4 but ml.g5.2xlarge has 1 GPU"),
        (lambda d: d["models"]["clip_tagging"].pop("weights"), "models.clip_tagging", "an enabled model needs weights"),
        (
            lambda d: d["models"]["asr"].update(weights={"s3_prefix": "weights/asr/", "hub_id": "x/y"}),
            "models.asr.weights",
            "exactly one of s3_prefix and hub_id",
        ),
        (
            lambda d: d["models"]["asr"].update(scaling={"target": 5, "scale_to_zero": False}),
            "models.asr",
            "min_instances: 0 needs scaling.scale_to_zero",
        ),
        (lambda d: d["models"]["asr"].update(min_instances=1), "models.asr", "scale_to_zero needs min_instances: 0"),
        (
            lambda d: d["models"]["asr"].update(volume_size_gb=100),
            "models.asr",
            "volume_size_gb is not supported on ml.g5.xlarge",
        ),
        (
            lambda d: d["models"]["asr"].update(tgi={"max_input_tokens": 10, "max_total_tokens": 20}),
            "models",
            "TGI settings apply only to",
        ),
        (lambda d: d["models"]["vlm"].update(tgi={"quantize": "int3"}), "models.vlm.tgi.quantize", "Input should be"),
        (lambda d: d["models"]["vlm"].update(instance_type="ml.x9.large"), "models.vlm", "not in stacks/instances.py"),
        (lambda d: d["models"]["vlm"]["scaling"].update(target=0), "models.vlm.scaling.target", "greater than 0"),
        (lambda d: d.update(region="mars-1"), "region", "String should match pattern"),
        (lambda d: d.update(account="1234"), "account", "String should match pattern"),
        (lambda d: d.update(removal_policy="sometimes"), "removal_policy", "Input should be"),
        (
            lambda d: d["models"]["vlm"].update(weights={"s3_prefix": "weights/vlm"}),
            "models.vlm.weights.s3_prefix",
            "String should match pattern",
        ),
    ],
)
def test_bad_config_names_file_field_and_reason(tmp_path, mutate, field, reason):
    message = error_for(tmp_path, mutate)
    assert f": {field}: " in message, message
    assert reason in message, message


def test_file_name_must_match_environment_name(tmp_path):
    with pytest.raises(ConfigError, match=r"staging\.yaml: name: 'dev' must match the file name 'staging'"):
        load_config(write(tmp_path, DEV, name="staging"))


def test_yaml_syntax_error_is_one_line(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text("name: dev\nmodels: [unclosed\n")
    with pytest.raises(ConfigError, match=r"dev\.yaml: not valid YAML"):
        load_config(path)


def test_several_errors_are_counted(tmp_path):
    message = error_for(tmp_path, lambda d: d.update(colour="blue", shape="round"))
    assert "(and 1 more)" in message


def test_app_exits_with_the_one_line_error(tmp_path, monkeypatch):
    """`python app.py` (what `cdk synth` runs) prints the error and exits non-zero instead of a traceback."""
    import subprocess
    import sys

    bad = copy.deepcopy(DEV)
    bad["models"]["vlm"]["instance_type"] = "ml.g5.huge"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    write(config_dir, bad)
    root = Path(__file__).resolve().parents[3]
    code = (
        "import sys, stacks.config as cfg; from pathlib import Path;"
        f"cfg.CONFIG_DIR = Path({str(config_dir)!r});"
        "import runpy; sys.argv=['app.py']; runpy.run_path('app.py', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "models.vlm.instance_type" in result.stderr
    assert "Traceback" not in result.stderr
