"""Container environments derived from config."""

from __future__ import annotations

import aws_cdk as cdk

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


def test_hub_weights_take_the_token_from_secrets_manager_by_reference():
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    env = tgi_environment(
        model("llm", weights={"hub_id": "meta-llama/Llama-2-7b-chat-hf", "hub_token_secret": "hf/token"})
    )
    assert env["HF_MODEL_ID"] == "meta-llama/Llama-2-7b-chat-hf"
    resolved = stack.resolve(env["HF_TOKEN"])
    assert resolved == "{{resolve:secretsmanager:hf/token:SecretString:::}}"


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
