"""Per-environment configuration: config/<env>.yaml validated by pydantic at synth.

Plain Python (pydantic + PyYAML, no aws_cdk), so the weight-staging command and the docs generator can read
the same files. A bad file fails with one line: `config/dev.yaml: models.vlm.instance_type: <reason>`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from vlp.dicts import deep_merge

from stacks import constants as c
from stacks import serving_properties
from stacks.instances import INSTANCES, InstanceSpec

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
PACKAGES_DIR = Path(__file__).resolve().parent.parent / "model_packages"
INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z][a-z0-9-]*\.(?:[0-9]*x?large|medium|small|metal)$")
TgiQuantization = Literal[
    "awq",
    "bitsandbytes",
    "bitsandbytes-fp4",
    "bitsandbytes-nf4",
    "eetq",
    "exl2",
    "fp8",
    "gptq",
    "marlin",
]
TGI_QUANTIZATIONS: tuple[str, ...] = get_args(TgiQuantization)
# How an endpoint update replaces the serving fleet (docs/operations.md, "Safe endpoint updates"): rolling batches,
# or blue/green with canary, linear or all-at-once traffic shifting; every choice rolls back on the endpoint's alarms.
DeploymentStrategy = Literal["rolling", "canary", "linear", "all_at_once"]
DEPLOYMENT_STRATEGIES: tuple[str, ...] = get_args(DeploymentStrategy)


class ConfigError(Exception):
    """A config file that cannot be deployed: the message is one line naming the file, the field and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeightsConfig(_Strict):
    """Where a model's weights come from: a prefix in the artifacts bucket (staged by `make stage-weights`),
    or a Hugging Face hub id, with the hub token read from Secrets Manager for gated models."""

    s3_prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9!_.*'()/-]+/$")
    hub_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)?$")
    hub_token_secret: str | None = Field(None, pattern=r"^[A-Za-z0-9_/+=.@-]{1,512}$")

    @model_validator(mode="after")
    def _one_source(self) -> WeightsConfig:
        if (self.s3_prefix is None) == (self.hub_id is None):
            raise ValueError("set exactly one of s3_prefix and hub_id")
        if self.hub_token_secret and not self.hub_id:
            raise ValueError("hub_token_secret only applies to hub_id weights")
        return self


class ScalingConfig(_Strict):
    """Target tracking on the variant (or the inference component when scale_to_zero is on)."""

    metric: Literal["invocations", "concurrency"] = "invocations"
    target: float = Field(gt=0, le=10_000)
    scale_in_cooldown_seconds: int = Field(600, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600)
    scale_to_zero: bool = False


class TgiConfig(_Strict):
    """Text Generation Inference launcher settings (env vars of the TGI container)."""

    max_input_tokens: int = Field(2048, ge=1)
    max_total_tokens: int = Field(4096, ge=2)
    max_batch_prefill_tokens: int | None = Field(None, ge=1)
    max_batch_total_tokens: int | None = Field(None, ge=1)
    quantize: TgiQuantization | None = None
    messages_api: bool = False

    @model_validator(mode="after")
    def _token_limits(self) -> TgiConfig:
        if self.max_input_tokens >= self.max_total_tokens:
            raise ValueError(
                f"max_input_tokens ({self.max_input_tokens}) must be below max_total_tokens ({self.max_total_tokens})"
            )
        if self.max_batch_prefill_tokens is not None and self.max_batch_prefill_tokens < self.max_input_tokens:
            raise ValueError("max_batch_prefill_tokens must be at least max_input_tokens")
        if self.max_batch_total_tokens is not None and self.max_batch_total_tokens < self.max_total_tokens:
            raise ValueError("max_batch_total_tokens must be at least max_total_tokens")
        return self


DjlDtype = Literal["fp16", "bf16", "fp32", "auto"]
DJL_DTYPES: tuple[str, ...] = get_args(DjlDtype)
# Options the stack sets from other fields (stacks/model_environment.py): model_id from weights, model_name from
# model_id, dtype from djl.dtype.
DJL_STACK_OPTIONS = ("model_id", "model_name", "dtype")


def package_options(role: str, packages_dir: Path = PACKAGES_DIR) -> frozenset[str]:
    """The `option.<name>` keys model_packages/<role>/serving.properties sets (without the prefix). DJL reads that
    file first and takes an OPTION_<NAME> environment variable only for a key the file does not set."""
    return frozenset(serving_properties.package_options(role, packages_dir))


class DjlConfig(_Strict):
    """A DJL role's per-environment settings (LMI container, Python engine). They reach the package's handler as
    OPTION_<NAME> environment variables, which DJL applies only where serving.properties is silent: the package's
    serving.properties keeps what must not vary and sets none of these (checked here and in tests)."""

    # fp16 | bf16 | fp32 | auto; unset: fp16 on a GPU instance, fp32 on CPU (the packages use fp32 without a GPU)
    dtype: DjlDtype | None = None
    # further option.<name> values, e.g. sam_model_name (what responses report) or label_cache_size
    options: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], str | int | float | bool] = Field(
        default_factory=dict
    )

    @field_validator("options")
    @classmethod
    def _not_set_by_the_stack(cls, value: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
        for key in value:
            if key in DJL_STACK_OPTIONS:
                source = "djl.dtype" if key == "dtype" else "model_id" if key == "model_name" else "weights"
                raise ValueError(f"'{key}' is set by the stack from {source}, not under djl.options")
        return value

    def option_values(self) -> dict[str, str]:
        """options as the strings DJL hands the handler (booleans as true/false)."""
        return {
            key: ("true" if value else "false") if isinstance(value, bool) else str(value)
            for key, value in self.options.items()
        }


class ModelConfig(_Strict):
    enabled: bool = True
    model_id: str = Field(min_length=1)
    weights: WeightsConfig | None = None
    container_version: str = Field(pattern=r"^[0-9][0-9A-Za-z.+-]*$")
    instance_type: str
    gpus: int | None = Field(None, ge=0, le=16)
    min_instances: int = Field(1, ge=0, le=100)
    max_instances: int = Field(1, ge=1, le=100)
    scaling: ScalingConfig
    health_check_timeout_seconds: int = Field(900, ge=60, le=3600)
    download_timeout_seconds: int = Field(900, ge=60, le=3600)
    volume_size_gb: int | None = Field(None, ge=1, le=512)
    tgi: TgiConfig | None = None
    djl: DjlConfig | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    # unset: the environment's deployment.strategy
    deployment: DeploymentStrategy | None = None
    # unset: isolated when SageMaker itself fetches the weights from S3 (TGI, Whisper); true on a DJL role: it runs
    # from its staged S3 bundle (docs/operations.md, "Isolated containers")
    network_isolation: bool | None = None
    # unset: alarms.latency_p90_ms (and the step's step_model_latency_p90_ms); a role slow by design sets its own
    # (restyle: seconds per diffusion step, tens of seconds a request)
    latency_p90_ms: int | None = Field(None, ge=1)

    def p90_latency_ms(self, alarms: AlarmsConfig) -> int:
        """The p90 model-latency alarm threshold of this role."""
        return self.latency_p90_ms or alarms.latency_p90_ms

    @field_validator("instance_type")
    @classmethod
    def _instance_type_form(cls, value: str) -> str:
        if not INSTANCE_TYPE_PATTERN.match(value):
            raise ValueError(
                f"'{value}' is not a SageMaker instance type (expected ml.<family>.<size>, e.g. ml.g5.2xlarge)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        spec = INSTANCES.get(self.instance_type)
        if spec is None and self.gpus is None:
            raise ValueError(
                f"instance_type {self.instance_type} is not in stacks/instances.py: add it there or set gpus"
            )
        if spec is not None and self.gpus is not None and self.gpus > spec.gpus:
            raise ValueError(f"gpus={self.gpus} but {self.instance_type} has {spec.gpus} GPU(s)")
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances ({self.min_instances}) is above max_instances ({self.max_instances})")
        if self.scaling.scale_to_zero and self.min_instances != 0:
            raise ValueError("scaling.scale_to_zero needs min_instances: 0")
        if self.min_instances == 0 and not self.scaling.scale_to_zero:
            raise ValueError(
                "min_instances: 0 needs scaling.scale_to_zero: true (a plain variant keeps at least one instance)"
            )
        if self.enabled and self.weights is None:
            raise ValueError("an enabled model needs weights (s3_prefix or hub_id)")
        if self.volume_size_gb is not None and spec is not None and spec.local_nvme:
            raise ValueError(f"volume_size_gb is not supported on {self.instance_type}: it has local NVMe storage")
        if self.scaling.scale_to_zero and self.deployment not in (None, "rolling"):
            raise ValueError(
                f"deployment: {self.deployment} is blue/green, which endpoints with inference components "
                "(scaling.scale_to_zero) do not support: use rolling"
            )
        if self.network_isolation and self.weights is not None and self.weights.hub_id:
            raise ValueError(
                "network_isolation: true needs weights.s3_prefix (an isolated container cannot reach the Hub)"
            )
        return self

    @property
    def gpu_count(self) -> int:
        """GPUs the container uses: the configured count, else all of the instance's."""
        return self.gpus if self.gpus is not None else INSTANCES[self.instance_type].gpus

    @property
    def instance(self) -> InstanceSpec | None:
        return INSTANCES.get(self.instance_type)


# The container version of each serving family unless an environment's file sets a role's container_version: one
# LMI (DJL) container for the DJL packages, one TGI for the VLM and the LLM (stacks/container_images.py).
TGI_CONTAINER_VERSION = "2.4.0"
DJL_CONTAINER_VERSION = "0.33.0"
WHISPER_CONTAINER_VERSION = "1.0.0"


def container_version(role: str) -> str:
    """The default container version of `role`: its serving family's."""
    if role in c.TGI_ROLES:
        return TGI_CONTAINER_VERSION
    return DJL_CONTAINER_VERSION if role in c.DJL_ROLES else WHISPER_CONTAINER_VERSION


class _ModelRow(NamedTuple):
    """A row of the design's model table: what a role runs unless the environment's file says otherwise."""

    model_id: str
    instance_type: str
    scaling: tuple[str, float]  # target tracking: metric, target
    family: dict[str, Any] | None = None  # the serving family's settings: {"tgi": {...}} or {"djl": {...}}

    def defaults(self, role: str) -> dict[str, Any]:
        """The row as ModelConfig fields, with the container version of the role's family."""
        metric, target = self.scaling
        return {
            "model_id": self.model_id,
            "container_version": container_version(role),
            "instance_type": self.instance_type,
            "scaling": {"metric": metric, "target": target},
            **(self.family or {}),
        }


def _djl_options(**options: str | int) -> dict[str, Any]:
    return {"djl": {"options": options}}


_MODEL_TABLE: dict[str, _ModelRow] = {
    c.MODEL_VLM: _ModelRow(
        "HuggingFaceM4/idefics-9b-instruct",
        "ml.g5.12xlarge",
        ("concurrency", 4),
        {"tgi": {"max_input_tokens": 2048, "max_total_tokens": 4096}},
    ),
    c.MODEL_LLM: _ModelRow(
        "meta-llama/Llama-2-7b-chat-hf",
        "ml.g5.2xlarge",
        ("concurrency", 4),
        {"tgi": {"max_input_tokens": 3072, "max_total_tokens": 4096}},
    ),
    c.MODEL_ASR: _ModelRow("large-v3", "ml.g5.xlarge", ("invocations", 60)),
    c.MODEL_INTENT_KEYWORDS: _ModelRow(
        "MoritzLaurer/deberta-v3-base-zeroshot-v2.0",
        "ml.g5.xlarge",
        ("invocations", 300),
        _djl_options(keyword_model_name="sentence-transformers/all-MiniLM-L6-v2"),
    ),
    c.MODEL_GROUNDED_SAM: _ModelRow(
        "IDEA-Research/grounding-dino-base",
        "ml.g5.2xlarge",
        ("invocations", 60),
        _djl_options(sam_model_name="facebook/sam-vit-huge", mask_batch_size=16),
    ),
    c.MODEL_CLIP_TAGGING: _ModelRow(
        "openai/clip-vit-large-patch14",
        "ml.g5.2xlarge",
        ("invocations", 200),
        _djl_options(label_cache_size=100_000, label_cache_max_mb=0, text_batch_size=256),
    ),
    c.MODEL_CLIP_INTERROGATOR: _ModelRow(
        "openai/clip-vit-large-patch14",
        "ml.g5.2xlarge",
        ("invocations", 30),
        _djl_options(caption_model_name="Salesforce/blip-image-captioning-large"),
    ),
    # SDXL 1.0 base img2img in fp16 fits one A10G (24 GB) with a batch of two 1024x1024 images; a request holds
    # the GPU for seconds, so scaling follows requests in flight (two per instance: one dynamic batch).
    c.MODEL_RESTYLE: _ModelRow("stabilityai/stable-diffusion-xl-base-1.0", "ml.g5.2xlarge", ("concurrency", 2)),
}
ROLE_DEFAULTS: dict[str, dict] = {role: row.defaults(role) for role, row in _MODEL_TABLE.items()}


class ModelsConfig(_Strict):
    asr: ModelConfig
    intent_keywords: ModelConfig
    vlm: ModelConfig
    llm: ModelConfig
    grounded_sam: ModelConfig
    clip_tagging: ModelConfig
    clip_interrogator: ModelConfig
    restyle: ModelConfig

    @model_validator(mode="before")
    @classmethod
    def _apply_role_defaults(cls, data: Any) -> Any:
        data = dict(data or {})
        for role, defaults in ROLE_DEFAULTS.items():
            given = data.get(role)
            if given is not None and not isinstance(given, dict):
                continue  # let pydantic report the type error on the field
            data[role] = copy.deepcopy(deep_merge(defaults, given or {}))  # never aliases ROLE_DEFAULTS
        return data

    @model_validator(mode="after")
    def _tgi_only_on_tgi(self) -> ModelsConfig:
        for role in c.MODEL_ROLES:
            if role not in c.TGI_ROLES and getattr(self, role).tgi is not None:
                raise ValueError(f"{role}.tgi: TGI settings apply only to {', '.join(c.TGI_ROLES)}")
        return self

    @model_validator(mode="after")
    def _restyle_needs_the_network(self) -> ModelsConfig:
        if self.restyle.network_isolation:
            raise ValueError(
                "restyle.network_isolation: the restyle container reads its image from and writes its PNG to the "
                "requests bucket itself, which an isolated container cannot reach"
            )
        return self

    @model_validator(mode="after")
    def _djl_settings_take_effect(self) -> ModelsConfig:
        for role in c.MODEL_ROLES:
            model: ModelConfig = getattr(self, role)
            if role not in c.DJL_ROLES:
                if model.djl is not None:
                    raise ValueError(f"{role}.djl: DJL settings apply only to {', '.join(c.DJL_ROLES)}")
                continue
            for name in model.environment:
                if name.upper().startswith(c.DJL_OPTION_ENV_PREFIX):
                    raise ValueError(
                        f"{role}.environment.{name}: set DJL options under {role}.djl (model_id, djl.dtype, "
                        "djl.options), where they are checked against the package's serving.properties"
                    )
            fixed = package_options(role) & set(model.djl.options if model.djl else {})
            if fixed:
                key = sorted(fixed)[0]
                raise ValueError(
                    f"{role}.djl.options.{key}: model_packages/{role}/serving.properties sets option.{key}, and DJL "
                    "lets the file win over the environment: change it there, or remove it there to configure it here"
                )
        return self

    def items(self) -> list[tuple[str, ModelConfig]]:
        """(role, config) for every role, in the order of constants.MODEL_ROLES."""
        return [(role, getattr(self, role)) for role in c.MODEL_ROLES]

    def enabled(self) -> list[tuple[str, ModelConfig]]:
        return [(role, model) for role, model in self.items() if model.enabled]


class StorageConfig(_Strict):
    requests_expiry_days: int = Field(7, ge=1, le=3650)
    noncurrent_versions_expiry_days: int = Field(30, ge=1, le=3650)
    access_logs_expiry_days: int = Field(90, ge=1, le=3650)


class AlarmsConfig(_Strict):
    email_subscriptions: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(
        default_factory=list
    )
    error_5xx_threshold: int = Field(5, ge=1)
    latency_p90_ms: int = Field(20_000, ge=1)
    gpu_utilization_percent: int = Field(90, ge=1, le=800)
    cpu_utilization_percent: int = Field(90, ge=1, le=10_000)
    evaluation_minutes: int = Field(5, ge=1, le=60)
    # service alarms (docs/operations.md "Runbook"): API Gateway, state machines, Lambda functions, WAF, EMF steps
    api_5xx_rate_percent: float = Field(1.0, gt=0, le=100)  # share of requests answered 5XX, per minute
    api_latency_p99_ms: int = Field(60_000, ge=1)
    state_machine_failures: int = Field(1, ge=1)  # failed / timed-out / throttled executions per minute
    lambda_errors: int = Field(5, ge=1)  # per function per minute
    lambda_throttles: int = Field(1, ge=1)
    waf_blocked_requests_per_5min: int = Field(500, ge=1)
    step_errors: int = Field(5, ge=1)  # EMF `Errors` per step per minute
    step_model_latency_p90_ms: int = Field(30_000, ge=1)  # EMF `ModelLatency` of the model steps
    no_capacity_failures: int = Field(1, ge=1)  # scale-to-zero components: requests refused without an instance
    idle_gpu_minutes: int = Field(120, ge=10, le=1440)  # GPUs running with zero invocations for this long


class BudgetConfig(_Strict):
    """AWS Budgets: the environment's monthly cost (filtered by its `environment` tag when it has one), alerting
    at 80 % and 100 % of actual spend to the alarm topic."""

    monthly_usd: float = Field(1000, gt=0, le=10_000_000)


# What CloudWatch Logs accepts as RetentionInDays.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922)


class LogsConfig(_Strict):
    """Every log group of the service, including those SageMaker and API Gateway would create at run time."""

    retention_days: int = 90

    @field_validator("retention_days")
    @classmethod
    def _allowed(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"{value} is not a CloudWatch Logs retention (one of {allowed})")
        return value


class DeploymentConfig(_Strict):
    """Endpoint updates (CfnEndpoint DeploymentConfig, InferenceComponent DeploymentConfig). Blue/green (canary,
    linear, all_at_once) provisions a full second fleet; rolling provisions one batch at a time."""

    strategy: DeploymentStrategy = "rolling"
    canary_percent: int = Field(10, ge=1, le=50)  # share of the new fleet that takes traffic first
    linear_step_percent: int = Field(25, ge=5, le=50)
    rolling_batch_percent: int = Field(25, ge=5, le=50)  # of the fleet (SageMaker allows 5-50 %)
    wait_minutes: int = Field(10, ge=0, le=60)  # baking time between steps, watching the rollback alarms
    termination_wait_minutes: int = Field(5, ge=0, le=60)  # blue/green: how long the old fleet stays after
    timeout_minutes: int = Field(120, ge=10, le=480)

    def headroom(self, strategy: str, max_instances: int) -> int:
        """Extra instances an endpoint update provisions while the old fleet still serves: blue/green a whole
        second fleet, a rolling update one batch (at least one instance)."""
        if strategy == "rolling":
            return max(1, -(-max_instances * self.rolling_batch_percent // 100))
        return max_instances


class VpcConfig(_Strict):
    """An existing VPC the models and Lambdas run in (no lookups at synth: ids only). Private subnets need an S3
    gateway endpoint and, for Lambdas, interface endpoints or NAT for the AWS APIs they call."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(min_length=1, max_length=16)
    security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]] = Field(min_length=1, max_length=5)
    availability_zones: list[Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")]] = Field(
        min_length=1, max_length=16
    )

    @model_validator(mode="after")
    def _zones_per_subnet(self) -> VpcConfig:
        if len(self.availability_zones) != len(self.subnet_ids):
            raise ValueError("availability_zones: one zone per entry of subnet_ids, in the same order")
        return self


class ApiConfig(_Strict):
    auth: Literal["iam", "cognito", "api_key"] = "iam"
    throttle_rate_limit: float = Field(50, gt=0)
    throttle_burst_limit: int = Field(100, ge=1)
    quota_requests_per_day: int | None = Field(None, ge=1)
    waf: bool = False
    waf_rate_limit_per_5min: int = Field(1000, ge=10)
    cors_origins: list[str] = Field(default_factory=list)
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, le=5 * 1024**3)
    presign_expiry_seconds: int = Field(900, ge=60, le=43_200)
    sync_timeout_seconds: int = Field(120, ge=10, le=300)


class EnvironmentConfig(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,15}$")
    account: str | None = Field(None, pattern=r"^[0-9]{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
    tags: dict[str, str] = Field(default_factory=dict)
    removal_policy: Literal["retain", "destroy"] = "retain"
    storage: StorageConfig = Field(default_factory=StorageConfig)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    vpc: VpcConfig | None = None
    models: ModelsConfig

    @model_validator(mode="after")
    def _blue_green_needs_a_fleet(self) -> EnvironmentConfig:
        for role, model in self.models.enabled():
            if model.scaling.scale_to_zero and model.deployment is None and self.deployment.strategy != "rolling":
                raise ValueError(
                    f"models.{role}: deployment.strategy {self.deployment.strategy} is blue/green, which endpoints "
                    "with inference components (scaling.scale_to_zero) do not support: set models."
                    f"{role}.deployment: rolling"
                )
        return self

    def deployment_strategy(self, model: ModelConfig) -> str:
        """The update strategy of one model: its own, else the environment's."""
        return model.deployment or self.deployment.strategy

    @property
    def prefix(self) -> str:
        """Prefix of the physical names we set (endpoints, buckets): `vlp-dev`."""
        return f"{c.APP_NAME}-{self.name}"

    def bucket_name(self, purpose: str, account: str) -> str:
        """Deterministic bucket name, unique per account and region: `vlp-dev-artifacts-<account>-us-east-1`.
        `account` may be a token (environment-agnostic account)."""
        return f"{self.prefix}-{purpose}-{self.account or account}-{self.region}"


def _location(loc: tuple) -> str:
    # pydantic puts the validator of a model at the model's own location: drop internal markers
    return ".".join(str(part) for part in loc if not str(part).startswith("function-")) or "(top level)"


def parse_config(data: object, source: str) -> EnvironmentConfig:
    """Validate already-parsed YAML; `source` names the file in the error."""
    try:
        return EnvironmentConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        reason = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            reason = "unknown field"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ConfigError(f"{source}: {_location(first['loc'])}: {reason}{more}") from None


def load_config(path: Path | str) -> EnvironmentConfig:
    path = Path(path)
    source = _display(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"{source}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {str(error).splitlines()[0]}") from None
    config = parse_config(data, source)
    if config.name != path.stem:
        raise ConfigError(f"{source}: name: '{config.name}' must match the file name '{path.stem}'")
    return config


def load_all(config_dir: Path = CONFIG_DIR) -> list[EnvironmentConfig]:
    """Every environment, in file-name order."""
    files = sorted(config_dir.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{_display(config_dir)}: no <env>.yaml files")
    return [load_config(path) for path in files]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
