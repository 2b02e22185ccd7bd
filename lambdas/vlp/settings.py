"""The Lambda environment, validated at cold start (a bad or missing variable fails the init).

Variable names are the ones in stacks/constants.py (this code does not import stacks/: it is not bundled);
the extra ones are listed in docs/pipeline.md, "Environment variables".

Standard library only (frozen dataclasses, one ``Var`` rule per variable): every function loads its settings in
its init phase, and pydantic's import alone costs a step function a third of its cold start
(bench/cold_start.py); a step imports pydantic with its logic, at its first invocation (vlp.entry).
``model_fields`` lists each class's variables (alias, default, ``is_required()``), as the CDK tests read them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, TypeVar

from vlp.errors import ConfigurationError

# Model roles (stacks/constants.py MODEL_ROLES) and their endpoint variables (constants.endpoint_env_var).
ROLES = ("asr", "intent_keywords", "vlm", "llm", "grounded_sam", "clip_tagging", "clip_interrogator", "restyle")
MiB = 1024 * 1024

_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_STATE_MACHINE_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"
_ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_TABLE_NAME = r"^[a-zA-Z0-9_.-]{3,255}$"
_REQUIRED: Any = object()


def endpoint_env_var(role: str) -> str:
    """Same rule as stacks.constants.endpoint_env_var."""
    return f"ENDPOINT_{role.upper()}"


def inference_component_env_var(role: str) -> str:
    """Set for roles served by a SageMaker inference component (scale-to-zero environments)."""
    return f"INFERENCE_COMPONENT_{role.upper()}"


@dataclass(frozen=True)
class Var:
    """One environment variable: its name (``alias``), type (str, int or bool), default and bounds."""

    alias: str
    kind: type = str
    default: Any = _REQUIRED
    pattern: str | None = None
    ge: int | None = None
    le: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()

    def is_required(self) -> bool:
        return self.default is _REQUIRED

    def parse(self, raw: str) -> Any:
        """The typed value of ``raw``; ValueError says what is wrong with it."""
        if self.kind is bool:
            return _bool(raw)
        if self.kind is int:
            try:
                value = int(raw.strip())
            except ValueError:
                raise ValueError("not an integer") from None
            if (self.ge is not None and value < self.ge) or (self.le is not None and value > self.le):
                raise ValueError(f"{value} is outside {self.ge}..{self.le}")
            return value
        if self.min_length is not None and len(raw) < self.min_length:
            raise ValueError(f"shorter than {self.min_length} characters")
        if self.max_length is not None and len(raw) > self.max_length:
            raise ValueError(f"longer than {self.max_length} characters")
        if self.pattern is not None and not re.match(self.pattern, raw):
            raise ValueError(f"does not match {self.pattern}")
        if self.choices and raw not in self.choices:
            raise ValueError(f"not one of {', '.join(self.choices)}")
        return raw


def _var(alias: str, kind: type = str, default: Any = _REQUIRED, **rules: Any) -> Any:
    """A settings field read from ``alias`` (a dataclass field carrying its Var)."""
    spec = Var(alias, kind, default, **rules)
    if spec.is_required():
        return field(metadata={"var": spec})
    return field(default=default, metadata={"var": spec})


class _ModelFields:
    """``Settings.model_fields``: field name -> Var, for the fields read from one variable each."""

    def __get__(self, instance: object, owner: type) -> dict[str, Var]:
        if "__dataclass_fields__" not in vars(owner):  # asked by @dataclass itself while it builds the class
            return {}
        return {item.name: item.metadata["var"] for item in fields(owner) if "var" in item.metadata}


@dataclass(frozen=True, kw_only=True)
class _Settings:
    model_fields: ClassVar[_ModelFields] = _ModelFields()

    requests_bucket: str = _var("REQUESTS_BUCKET", pattern=_BUCKET)
    service_name: str = _var("POWERTOOLS_SERVICE_NAME", str, "vlp", min_length=1, max_length=255)
    metrics_namespace: str = _var("POWERTOOLS_METRICS_NAMESPACE", str, "VLP", min_length=1, max_length=255)

    def model_copy(self: _S, *, update: Mapping[str, Any]) -> _S:
        """A copy with ``update``'s fields changed (not validated: tests use it)."""
        return replace(self, **update)


@dataclass(frozen=True, kw_only=True)
class _Limits:
    max_image_bytes: int = _var("MAX_IMAGE_BYTES", int, 10 * MiB, ge=1024, le=50 * MiB)
    # 40 MP: a 8000x5000 photo. Pillow's own bomb guard is 89 MP; ours is stricter and configurable.
    max_image_pixels: int = _var("MAX_IMAGE_PIXELS", int, 40_000_000, ge=10_000, le=178_956_970)
    # SageMaker real-time payloads are limited to 6 MB: raw audio goes to Whisper in one request.
    max_audio_bytes: int = _var("MAX_AUDIO_BYTES", int, 5 * MiB, ge=1024, le=6_000_000)
    max_audio_seconds: int = _var("MAX_AUDIO_SECONDS", int, 600, ge=1, le=3600)


@dataclass(frozen=True, kw_only=True)
class _Api:
    # Comma-separated origins allowed to call the API from a browser (config `api.cors_origins`); "*" for any.
    cors_allow_origins: str = _var("CORS_ALLOW_ORIGINS", str, "", max_length=4000)

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip())


_PRESIGN_EXPIRY = {"ge": 60, "le": 43_200}


@dataclass(frozen=True, kw_only=True)
class UploadsSettings(_Settings, _Limits, _Api):
    max_upload_bytes: int = _var("MAX_UPLOAD_BYTES", int, 20 * MiB, ge=1024, le=5 * 1024 * MiB)
    presign_expiry_seconds: int = _var("PRESIGN_EXPIRY_SECONDS", int, 900, **_PRESIGN_EXPIRY)


@dataclass(frozen=True, kw_only=True)
class AnalyzeSettings(_Settings, _Api):
    state_machine_arn: str = _var("STATE_MACHINE_ARN", pattern=_STATE_MACHINE_ARN)
    presign_expiry_seconds: int = _var("PRESIGN_EXPIRY_SECONDS", int, 900, **_PRESIGN_EXPIRY)


@dataclass(frozen=True, kw_only=True)
class JobsSettings(_Settings, _Api):
    jobs_state_machine_arn: str = _var("JOBS_STATE_MACHINE_ARN", pattern=_STATE_MACHINE_ARN)
    presign_expiry_seconds: int = _var("PRESIGN_EXPIRY_SECONDS", int, 900, **_PRESIGN_EXPIRY)
    # the DynamoDB table of Idempotency-Key records (stacks/constants.py ENV_IDEMPOTENCY_TABLE)
    idempotency_table: str = _var("IDEMPOTENCY_TABLE", pattern=_TABLE_NAME)


@dataclass(frozen=True, kw_only=True)
class PipelineSettings(_Settings, _Limits):
    """Every pipeline step reads the same environment (simplest for the CDK code)."""

    # role -> endpoint (inference component) name, None when not deployed: ENDPOINT_<ROLE> (INFERENCE_COMPONENT_<ROLE>)
    endpoints: dict[str, str | None] = field(default_factory=dict)
    inference_components: dict[str, str | None] = field(default_factory=dict)
    # Above the slowest model's latency (SageMaker cuts real-time invocations at 60 s), below the Lambda timeout.
    sagemaker_read_timeout_seconds: int = _var("SAGEMAKER_READ_TIMEOUT_SECONDS", int, 65, ge=1, le=900)
    vlm_messages_api: bool = _var("VLM_MESSAGES_API", bool, False)
    vlm_image_transport: str = _var("VLM_IMAGE_TRANSPORT", str, "data_uri", choices=("data_uri", "presigned_url"))

    def endpoint(self, role: str) -> str | None:
        return self.endpoints.get(role)

    def inference_component(self, role: str) -> str | None:
        return self.inference_components.get(role)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("not a boolean (true/false, 1/0, yes/no, on/off)")


def _names(environ: Mapping[str, str], variable: Any, problems: list[str]) -> dict[str, str | None]:
    """role -> the name in ``variable(role)`` (None when unset or blank); a bad name is a problem of ``endpoints``."""
    names = {role: (environ.get(variable(role)) or "").strip() or None for role in ROLES}
    for role, name in names.items():
        if name is not None and not re.match(_ENDPOINT_NAME, name):
            problems.append(f"endpoints: {role}: '{name}' is not a SageMaker endpoint/component name")
    return names


_S = TypeVar("_S", bound=_Settings)


def load_settings(model: type[_S], environ: Mapping[str, str] | None = None) -> _S:
    """Build ``model`` from the environment; a ConfigurationError names every bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, spec in model.model_fields.items():
        if spec.alias not in environ:
            if spec.is_required():
                problems.append(f"{spec.alias}: required")
            continue
        try:
            values[name] = spec.parse(environ[spec.alias])
        except ValueError as error:
            problems.append(f"{spec.alias}: {error}")
    if issubclass(model, PipelineSettings):
        values["endpoints"] = _names(environ, endpoint_env_var, problems)
        values["inference_components"] = _names(environ, inference_component_env_var, problems)
    if problems:
        raise ConfigurationError("invalid Lambda environment: " + "; ".join(problems))
    return model(**values)
