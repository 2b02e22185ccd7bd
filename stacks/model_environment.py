"""Container environment of each serving stack, derived from a model's config (plain functions, unit-tested)."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.config import ModelConfig

MODEL_DIR = "/opt/ml/model"  # where SageMaker mounts ModelDataSource / ModelDataUrl contents


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def _hub_id(model: ModelConfig) -> str:
    """The hub id a container downloads when weights are not staged in S3."""
    return model.weights.hub_id if model.weights and model.weights.hub_id else model.model_id


def _hub_token(model: ModelConfig) -> dict[str, str]:
    # A CloudFormation dynamic reference: the token never appears in config, template or repository.
    secret = model.weights.hub_token_secret if model.weights else None
    if not secret:
        return {}
    return {"HF_TOKEN": cdk.SecretValue.secrets_manager(secret).unsafe_unwrap()}


def tgi_environment(model: ModelConfig) -> dict[str, str]:
    """Text Generation Inference launcher settings (https://huggingface.co/docs/text-generation-inference)."""
    tgi = model.tgi
    weights_from_s3 = model.weights is not None and model.weights.s3_prefix is not None
    # TGI renamed MAX_INPUT_LENGTH to MAX_INPUT_TOKENS in 2.1; older images only know the old name.
    input_key = "MAX_INPUT_TOKENS" if _version_tuple(model.container_version) >= (2, 1) else "MAX_INPUT_LENGTH"
    env = {
        "HF_MODEL_ID": MODEL_DIR if weights_from_s3 else _hub_id(model),
        "SM_NUM_GPUS": str(model.gpu_count),
        input_key: str(tgi.max_input_tokens),
        "MAX_TOTAL_TOKENS": str(tgi.max_total_tokens),
    }
    if tgi.max_batch_prefill_tokens:
        env["MAX_BATCH_PREFILL_TOKENS"] = str(tgi.max_batch_prefill_tokens)
    if tgi.max_batch_total_tokens:
        env["MAX_BATCH_TOTAL_TOKENS"] = str(tgi.max_batch_total_tokens)
    if tgi.quantize:
        env["HF_MODEL_QUANTIZE"] = tgi.quantize
    if tgi.messages_api:
        env["MESSAGES_API_ENABLED"] = "true"
    return {**env, **_hub_token(model), **model.environment}


def djl_environment(model: ModelConfig, *, weights_uri: str | None) -> dict[str, str]:
    """DJL LMI, Python engine: the package comes as ModelDataUrl; weights from S3 (or the hub) via option.model_id."""
    env = {
        "OPTION_MODEL_ID": weights_uri or _hub_id(model),
        "OPTION_ENGINE": "Python",
        "OPTION_MODEL_NAME": model.model_id,  # what responses report as "model" (saved weights no longer carry it)
        "OPTION_DTYPE": "fp16" if model.gpu_count else "fp32",
        "SERVING_FAIL_FAST": "true",  # a package that cannot load fails the health check instead of serving errors
    }
    return {**env, **_hub_token(model), **model.environment}


def whisper_environment(model: ModelConfig) -> dict[str, str]:
    """Our Whisper container (docs/whisper-container.md)."""
    weights_from_s3 = model.weights is not None and model.weights.s3_prefix is not None
    env = {"MODEL_DIR": MODEL_DIR} if weights_from_s3 else {"WHISPER_MODEL": _hub_id(model)}
    env["WHISPER_COMPUTE_TYPE"] = "float16" if model.gpu_count else "int8"
    env["MODEL_ID"] = model.model_id  # what responses report as "model"
    return {**env, **_hub_token(model), **model.environment}
