"""Container environments derived from config."""

from __future__ import annotations

import pytest

from stacks import constants as c
from stacks.config import ROLE_DEFAULTS, ModelConfig
from stacks.model_environment import djl_environment, tgi_environment, whisper_environment


def model(role: str, **overrides) -> ModelConfig:
    data = {**ROLE_DEFAULTS[role], "weights": {"s3_prefix": f"weights/{role}/"}, **overrides}
    return ModelConfig.model_validate(data)


def test_tgi_environment_from_s3_weights_uses_all_gpus():
    env = tgi_environment(model("vlm"))
    assert env["HF_MODEL_ID"] == "/opt/ml/model"
    assert env["SM_NUM_GPUS"] == "4"  # ml.g5.12xlarge
    assert env["MAX_INPUT_TOKENS"] == "2048" and env["MAX_TOTAL_TOKENS"] == "4096"
    assert "HF_MODEL_QUANTIZE" not in env and "HF_TOKEN" not in env


def test_tgi_environment_old_version_uses_old_name_and_options():
    env = tgi_environment(
        model(
            "llm",
            container_version="1.4.5",
            gpus=1,
            tgi={"max_input_tokens": 1000, "max_total_tokens": 2000, "quantize": "gptq", "messages_api": True},
        )
    )
    assert env["MAX_INPUT_LENGTH"] == "1000" and "MAX_INPUT_TOKENS" not in env
    assert env["HF_MODEL_QUANTIZE"] == "gptq" and env["MESSAGES_API_ENABLED"] == "true"


def test_hub_weights_name_the_token_secret_never_its_value():
    hub = {"hub_id": "openai/whisper-large-v3", "hub_token_secret": "hf/token"}
    for env in (
        whisper_environment(model("asr", weights=hub)),
        djl_environment(
            model("clip_tagging", weights={**hub, "hub_id": "openai/clip-vit-large-patch14"}), weights_uri=None
        ),
    ):
        assert env[c.ENV_HF_TOKEN_SECRET_ID] == "hf/token"
        assert "HF_TOKEN" not in env and not any("resolve:" in value for value in env.values())


def test_tgi_refuses_a_hub_token_at_synth():
    gated = model("llm", weights={"hub_id": "meta-llama/Llama-2-7b-chat-hf", "hub_token_secret": "hf/token"})
    with pytest.raises(ValueError, match=r"hub_token_secret is not supported for TGI roles.*Stage the weights"):
        tgi_environment(gated)
    open_weights = tgi_environment(model("llm", weights={"hub_id": "mistralai/Mistral-7B-Instruct-v0.2"}))
    assert open_weights["HF_MODEL_ID"] == "mistralai/Mistral-7B-Instruct-v0.2"
    assert c.ENV_HF_TOKEN_SECRET_ID not in open_weights


def test_djl_environment_points_option_model_id_at_the_weights():
    env = djl_environment(model("clip_tagging"), weights_uri="s3://bucket/weights/clip_tagging/")
    assert env["OPTION_MODEL_ID"] == "s3://bucket/weights/clip_tagging/"
    assert env["OPTION_DTYPE"] == "fp16"
    assert env["OPTION_MODEL_NAME"] == "openai/clip-vit-large-patch14"
    cpu = djl_environment(model("intent_keywords", instance_type="ml.m5.xlarge"), weights_uri=None)
    assert cpu["OPTION_DTYPE"] == "fp32" and cpu["OPTION_MODEL_ID"] == "MoritzLaurer/deberta-v3-base-zeroshot-v2.0"


def test_whisper_environment_and_user_overrides_win():
    env = whisper_environment(model("asr", environment={"MAX_AUDIO_SECONDS": "120"}))
    assert env == {
        "MODEL_DIR": "/opt/ml/model",
        "WHISPER_COMPUTE_TYPE": "float16",
        "MODEL_ID": "large-v3",
        "MAX_AUDIO_SECONDS": "120",
    }
