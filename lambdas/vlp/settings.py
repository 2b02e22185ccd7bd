"""The Lambda environment, validated by pydantic at cold start (a bad or missing variable fails the init).

Variable names are the ones in stacks/constants.py (this code does not import stacks/: it is not bundled);
the extra ones are listed in docs/pipeline.md, "Environment variables".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vlp.errors import ConfigurationError

# Model roles (stacks/constants.py MODEL_ROLES) and their endpoint variables (constants.endpoint_env_var).
ROLES = ("asr", "intent_keywords", "vlm", "llm", "grounded_sam", "clip_tagging", "clip_interrogator", "restyle")
MiB = 1024 * 1024

_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_STATE_MACHINE_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"
_ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_TABLE_NAME = r"^[a-zA-Z0-9_.-]{3,255}$"


def endpoint_env_var(role: str) -> str:
    """Same rule as stacks.constants.endpoint_env_var."""
    return f"ENDPOINT_{role.upper()}"


def inference_component_env_var(role: str) -> str:
    """Set for roles served by a SageMaker inference component (scale-to-zero environments)."""
    return f"INFERENCE_COMPONENT_{role.upper()}"


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    requests_bucket: str = Field(alias="REQUESTS_BUCKET", pattern=_BUCKET)
    service_name: str = Field("vlp", alias="POWERTOOLS_SERVICE_NAME", min_length=1, max_length=255)
    metrics_namespace: str = Field("VLP", alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1, max_length=255)


class _Limits(BaseModel):
    max_image_bytes: int = Field(10 * MiB, alias="MAX_IMAGE_BYTES", ge=1024, le=50 * MiB)
    # 40 MP: a 8000x5000 photo. Pillow's own bomb guard is 89 MP; ours is stricter and configurable.
    max_image_pixels: int = Field(40_000_000, alias="MAX_IMAGE_PIXELS", ge=10_000, le=178_956_970)
    # SageMaker real-time payloads are limited to 6 MB: raw audio goes to Whisper in one request.
    max_audio_bytes: int = Field(5 * MiB, alias="MAX_AUDIO_BYTES", ge=1024, le=6_000_000)
    max_audio_seconds: int = Field(600, alias="MAX_AUDIO_SECONDS", ge=1, le=3600)


class _Api(BaseModel):
    # Comma-separated origins allowed to call the API from a browser (config `api.cors_origins`); "*" for any.
    cors_allow_origins: str = Field("", alias="CORS_ALLOW_ORIGINS", max_length=4000)

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip())


class UploadsSettings(_Settings, _Limits, _Api):
    max_upload_bytes: int = Field(20 * MiB, alias="MAX_UPLOAD_BYTES", ge=1024, le=5 * 1024 * MiB)
    presign_expiry_seconds: int = Field(900, alias="PRESIGN_EXPIRY_SECONDS", ge=60, le=43_200)


class AnalyzeSettings(_Settings, _Api):
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=_STATE_MACHINE_ARN)
    presign_expiry_seconds: int = Field(900, alias="PRESIGN_EXPIRY_SECONDS", ge=60, le=43_200)


class JobsSettings(_Settings, _Api):
    jobs_state_machine_arn: str = Field(alias="JOBS_STATE_MACHINE_ARN", pattern=_STATE_MACHINE_ARN)
    presign_expiry_seconds: int = Field(900, alias="PRESIGN_EXPIRY_SECONDS", ge=60, le=43_200)
    # the DynamoDB table of Idempotency-Key records (stacks/constants.py ENV_IDEMPOTENCY_TABLE)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", pattern=_TABLE_NAME)


class PipelineSettings(_Settings, _Limits):
    """Every pipeline step reads the same environment (simplest for the CDK code)."""

    endpoints: dict[str, str | None] = Field(default_factory=dict)
    inference_components: dict[str, str | None] = Field(default_factory=dict)
    # Above the slowest model's latency (SageMaker cuts real-time invocations at 60 s), below the Lambda timeout.
    sagemaker_read_timeout_seconds: int = Field(65, alias="SAGEMAKER_READ_TIMEOUT_SECONDS", ge=1, le=900)
    vlm_messages_api: bool = Field(False, alias="VLM_MESSAGES_API")
    vlm_image_transport: Literal["data_uri", "presigned_url"] = Field("data_uri", alias="VLM_IMAGE_TRANSPORT")

    @field_validator("endpoints", "inference_components")
    @classmethod
    def _names(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        import re

        for role, name in value.items():
            if name is not None and not re.match(_ENDPOINT_NAME, name):
                raise ValueError(f"{role}: '{name}' is not a SageMaker endpoint/component name")
        return value

    def endpoint(self, role: str) -> str | None:
        return self.endpoints.get(role)

    def inference_component(self, role: str) -> str | None:
        return self.inference_components.get(role)


def _bool_env(value: str) -> bool | str:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    return value  # let pydantic report it


_S = TypeVar("_S", bound=_Settings)


def load_settings(model: type[_S], environ: Mapping[str, str] | None = None) -> _S:
    """Build ``model`` from the environment; a ConfigurationError names every bad variable."""
    environ = os.environ if environ is None else environ
    data: dict[str, object] = {}
    for field in model.model_fields.values():
        alias = field.alias
        if alias and alias in environ:
            value: object = environ[alias]
            if field.annotation is bool:
                value = _bool_env(environ[alias])
            data[alias] = value
    if issubclass(model, PipelineSettings):
        data["endpoints"] = {role: (environ.get(endpoint_env_var(role)) or "").strip() or None for role in ROLES}
        data["inference_components"] = {
            role: (environ.get(inference_component_env_var(role)) or "").strip() or None for role in ROLES
        }
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field_name = str(item["loc"][0]) if item["loc"] else ""
            bad_field = model.model_fields.get(field_name)
            if bad_field is not None and bad_field.alias:
                where = bad_field.alias
            else:
                where = ".".join(str(p) for p in item["loc"])
            problems.append(f"{where}: {item['msg']}")
        raise ConfigurationError("invalid Lambda environment: " + "; ".join(problems)) from None
