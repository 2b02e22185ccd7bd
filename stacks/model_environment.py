"""Container environment of each serving stack, derived from a model's config (plain functions, unit-tested)."""

from __future__ import annotations

from stacks import constants as c
from stacks.config import DjlConfig, ModelConfig, TgiConfig
from stacks.model_bundle import MODEL_DIR  # where SageMaker puts the model data


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def _hub_id(model: ModelConfig) -> str:
    """The hub id a container downloads when weights are not staged in S3."""
    return model.weights.hub_id if model.weights and model.weights.hub_id else model.model_id


def _hub_token(model: ModelConfig) -> dict[str, str]:
    """The hub token's secret by name, never its value: a value (or a `{{resolve:secretsmanager}}` reference, which
    CloudFormation resolves into the model) would show in plaintext in DescribeModel and the console. The container
    reads the secret at start-up through its own execution role (stacks/model_secrets.py grants GetSecretValue on
    that secret only) and sets HF_TOKEN for the hub client in its own process."""
    secret = model.weights.hub_token_secret if model.weights else None
    return {c.ENV_HF_TOKEN_SECRET_ID: secret} if secret else {}


def _refuse_hub_token(model: ModelConfig) -> None:
    """TGI containers run no code of ours and take the token only as a plaintext HF_TOKEN variable (no native
    Secrets Manager support in the Hugging Face TGI DLC): a gated model on TGI must have its weights staged to S3."""
    if model.weights is not None and model.weights.hub_token_secret:
        raise ValueError(
            f"model {model.model_id}: weights.hub_token_secret is not supported for TGI roles: the TGI container "
            "would need the token in plaintext in its environment. Stage the weights to S3 (make stage-weights, "
            "weights.s3_prefix) instead."
        )


def tgi_environment(model: ModelConfig) -> dict[str, str]:
    """Text Generation Inference launcher settings (https://huggingface.co/docs/text-generation-inference)."""
    _refuse_hub_token(model)
    tgi = model.tgi or TgiConfig()  # a TGI role without a tgi block gets TGI's defaults
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


def djl_options(model: ModelConfig, *, weights_uri: str | None) -> dict[str, str]:
    """The option.<name> values a DJL role's config sets: model_id (the weights), model_name (what responses report
    as "model"; staged weights no longer carry it), dtype, and djl.options. The package's serving.properties sets
    none of them (config validation and tests/infra check it), because DJL lets the file win."""
    djl = model.djl or DjlConfig()
    return {
        **djl.option_values(),
        "model_id": weights_uri or _hub_id(model),
        "model_name": model.model_id,
        "dtype": djl.dtype or ("fp16" if model.gpu_count else "fp32"),
    }


def djl_environment(model: ModelConfig, *, weights_uri: str | None) -> dict[str, str]:
    """DJL LMI, Python engine: the package comes as ModelDataUrl (its serving.properties fixes the engine and what
    must not vary); the role's config reaches the handler as OPTION_<NAME> variables (djl_options)."""
    env = {c.djl_option_env_var(name): value for name, value in djl_options(model, weights_uri=weights_uri).items()}
    # a package that cannot load fails the health check instead of serving errors
    env[c.ENV_SERVING_FAIL_FAST] = "true"
    return {**env, **_hub_token(model), **model.environment}


def whisper_environment(model: ModelConfig) -> dict[str, str]:
    """Our Whisper container (docs/whisper-container.md)."""
    weights_from_s3 = model.weights is not None and model.weights.s3_prefix is not None
    env = {"MODEL_DIR": MODEL_DIR} if weights_from_s3 else {"WHISPER_MODEL": _hub_id(model)}
    env["WHISPER_COMPUTE_TYPE"] = "float16" if model.gpu_count else "int8"
    env["MODEL_ID"] = model.model_id  # what responses report as "model"
    return {**env, **_hub_token(model), **model.environment}


def network_isolated(role: str, model: ModelConfig) -> bool:
    """Whether the model's container runs with EnableNetworkIsolation: by default when SageMaker itself copies the
    weights from S3 into /opt/ml/model (TGI, Whisper with weights.s3_prefix). A DJL role opts in with
    `network_isolation: true` (weights.s3_prefix required): it then runs from its S3 bundle (package, vendored
    dependencies and weights under one prefix that `make stage-weights` stages, stacks/model_bundle.py), which
    SageMaker copies in like TGI's weights; by default it takes its package as an asset and lets DJL fetch
    `option.model_id=s3://...` itself, which needs the network (or `vpc` with an S3 gateway endpoint)."""
    from_s3 = model.weights is not None and model.weights.s3_prefix is not None
    if model.network_isolation is None:
        return from_s3 and role not in c.DJL_ROLES
    if model.network_isolation and not from_s3:  # config validation says the same; kept for direct callers
        raise ValueError(f"models.{role}.network_isolation: true needs weights.s3_prefix")
    return model.network_isolation
