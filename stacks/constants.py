"""Every name shared between the CDK code, the Lambda settings models and the tests: logical ids,
environment variable names, output keys. Change a name here and the tests follow."""

from __future__ import annotations

from vlp.steps import STEP_NAMES

APP_NAME = "vlp"

# ---- model roles: config keys under `models:` and the suffix of everything named per model ----
MODEL_ASR = "asr"
MODEL_INTENT_KEYWORDS = "intent_keywords"
MODEL_VLM = "vlm"
MODEL_LLM = "llm"
MODEL_GROUNDED_SAM = "grounded_sam"
MODEL_CLIP_TAGGING = "clip_tagging"
MODEL_CLIP_INTERROGATOR = "clip_interrogator"
MODEL_RESTYLE = "restyle"  # SDXL 1.0 img2img (model_packages/restyle); the pipeline reads ENDPOINT_RESTYLE
MODEL_ROLES = (
    MODEL_ASR,
    MODEL_INTENT_KEYWORDS,
    MODEL_VLM,
    MODEL_LLM,
    MODEL_GROUNDED_SAM,
    MODEL_CLIP_TAGGING,
    MODEL_CLIP_INTERROGATOR,
    MODEL_RESTYLE,
)
# which serving stack runs each role
TGI_ROLES = (MODEL_VLM, MODEL_LLM)
DJL_ROLES = (MODEL_INTENT_KEYWORDS, MODEL_GROUNDED_SAM, MODEL_CLIP_TAGGING, MODEL_CLIP_INTERROGATOR, MODEL_RESTYLE)
# DJL containers: OPTION_<NAME> becomes option.<name> (lower-cased) where serving.properties does not set it
DJL_OPTION_ENV_PREFIX = "OPTION_"
ENV_SERVING_FAIL_FAST = "SERVING_FAIL_FAST"
# A role that loads its weights from the hub with a token: the Secrets Manager secret's name, which the container
# reads into HF_TOKEN at start-up through its own role (model_packages/shared/vlp_hub_token.py); never the value.
ENV_HF_TOKEN_SECRET_ID = "HF_TOKEN_SECRET_ID"  # noqa: S105 (a variable name, not a secret)


def djl_option_env_var(option: str) -> str:
    """`label_cache_size` -> `OPTION_LABEL_CACHE_SIZE`."""
    return DJL_OPTION_ENV_PREFIX + option.upper()


def endpoint_env_var(role: str) -> str:
    """The Lambda environment variable that carries the endpoint name of a model role."""
    return f"ENDPOINT_{role.upper()}"


# ---- stacks (construct ids inside each environment's Stage) ----
STORAGE_STACK_ID = "Storage"
HOSTING_STACK_ID = "Hosting"
API_STACK_ID = "Api"
MONITORING_STACK_ID = "Monitoring"

# ---- construct ids ----
ENCRYPTION_KEY_ID = "DataKey"
ARTIFACTS_BUCKET_ID = "ArtifactsBucket"
REQUESTS_BUCKET_ID = "RequestsBucket"
ACCESS_LOGS_BUCKET_ID = "AccessLogsBucket"
ALARM_TOPIC_ID = "AlarmTopic"
SERVICE_MONITORING_ID = "Service"  # cdk-monitoring-constructs facade: API, state machines, functions, WAF
STEP_METRICS_ID = "StepMetrics"
SERVICE_UNHEALTHY_ALARM_ID = "ServiceUnhealthy"
FAILED_JOBS_RULE_ID = "FailedJobs"
BUDGET_ID = "Budget"
ENDPOINT_LOGS_ID = "RuntimeLogs"  # per endpoint, in the Hosting stack
API_EXECUTION_LOGS_ID = "ExecutionLogs"  # in the Api stack
IDEMPOTENCY_TABLE_ID = "IdempotencyTable"


def model_construct_id(role: str) -> str:
    """`clip_tagging` -> `ClipTaggingModel`."""
    return "".join(part.capitalize() for part in role.split("_")) + "Model"


# ---- S3 layout (the artifacts bucket holds weights/<role>/, named per model in config) ----
UPLOADS_PREFIX = "uploads/"  # requests bucket: what callers upload through presigned posts
INPUTS_PREFIX = "inputs/"  # requests bucket: inline inputs written by the validate step, normalised images
RESULTS_PREFIX = "results/"  # requests bucket: masks and other results
# artifacts bucket: a network-isolated DJL role's bundle, bundles/<role>/<package hash>/ (package files, vendor/,
# and its weights under weights/), which SageMaker copies uncompressed into /opt/ml/model (stacks/model_bundle.py)
BUNDLES_PREFIX = "bundles/"
BUNDLE_WEIGHTS_DIR = "weights"

# ---- Lambda environment variables ----
ENV_REQUESTS_BUCKET = "REQUESTS_BUCKET"
ENV_STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
ENV_JOBS_STATE_MACHINE_ARN = "JOBS_STATE_MACHINE_ARN"
ENV_MAX_UPLOAD_BYTES = "MAX_UPLOAD_BYTES"
ENV_PRESIGN_EXPIRY_SECONDS = "PRESIGN_EXPIRY_SECONDS"
ENV_POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
ENV_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
METRICS_NAMESPACE = "VLP"  # the Lambda code's default; each environment's stack sets metrics_namespace(env)


def metrics_namespace(environment: str) -> str:
    """`VLP/dev`: the EMF namespace of one environment, so environments sharing an account do not mix."""
    return f"{METRICS_NAMESPACE}/{environment}"


METRIC_SERVICE_DIMENSION = "service"  # Powertools' default dimension (POWERTOOLS_SERVICE_NAME)
METRIC_STEP_DIMENSION = "Step"  # lambdas/vlp/runtime.py step_handler

# ---- stack outputs ----
OUTPUT_ARTIFACTS_BUCKET = "ArtifactsBucketName"
OUTPUT_REQUESTS_BUCKET = "RequestsBucketName"
OUTPUT_ALARM_TOPIC = "AlarmTopicArn"
OUTPUT_DASHBOARD = "DashboardName"
OUTPUT_SERVICE_ALARM = "ServiceUnhealthyAlarmName"
OUTPUT_BUDGET = "BudgetName"
OUTPUT_API_URL = "ApiUrl"
OUTPUT_IDEMPOTENCY_TABLE = "IdempotencyTableName"


def output_endpoint_name(role: str) -> str:
    return "".join(part.capitalize() for part in role.split("_")) + "EndpointName"


# ---- request path: Lambda functions, state machines, REST API (docs/pipeline.md, docs/api.md) ----
ENV_CORS_ALLOW_ORIGINS = "CORS_ALLOW_ORIGINS"
ENV_SAGEMAKER_READ_TIMEOUT_SECONDS = "SAGEMAKER_READ_TIMEOUT_SECONDS"
ENV_VLM_MESSAGES_API = "VLM_MESSAGES_API"
ENV_VLM_IMAGE_TRANSPORT = "VLM_IMAGE_TRANSPORT"
ENV_IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"  # jobs: the DynamoDB table of Idempotency-Key records

# ---- the idempotency table (Storage stack; Powertools' DynamoDB persistence layer, default attribute names) ----
IDEMPOTENCY_PARTITION_KEY = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"  # epoch seconds; DynamoDB TTL deletes expired records


def idempotency_table_name(prefix: str) -> str:
    """`vlp-dev-idempotency`: a literal name, so the jobs function's IAM resource is a literal ARN."""
    return f"{prefix}-idempotency"


def inference_component_env_var(role: str) -> str:
    """The Lambda environment variable that carries the inference component name of a model role (scale to zero)."""
    return f"INFERENCE_COMPONENT_{role.upper()}"


# Lambda functions (docs/pipeline.md "Functions"); the handler of `<name>` is `vlp.handlers.<name>.handler`.
FUNCTION_UPLOADS = "uploads"
FUNCTION_ANALYZE = "analyze"
FUNCTION_JOBS = "jobs"
API_FUNCTIONS = (FUNCTION_UPLOADS, FUNCTION_ANALYZE, FUNCTION_JOBS)
STEP_FUNCTIONS = STEP_NAMES  # the pipeline steps, from the registry (lambdas/vlp/steps.py)
LAMBDA_CODE_DIR = "lambdas"
LAMBDA_LAYER_DIR = "build/lambda-layer"  # `make build` (Makefile target .stamps/lambda-layer)


def function_handler(name: str) -> str:
    return f"vlp.handlers.{name}.handler"


def function_construct_id(name: str) -> str:
    """`validate` -> `ValidateFunction` (also the `${ValidateFunctionArn}` substitution of docs/pipeline.md)."""
    return f"{name.capitalize()}Function"


def alarm_name_suffix(construct_id: str) -> str:
    """An alarm's construct id in the form of the alarm names: `ModelLatency` -> `model-latency`."""
    return "".join(f"-{ch.lower()}" if ch.isupper() else ch for ch in construct_id).lstrip("-")


# API Gateway: the stage is the first path segment of ApiUrl (openapi/vlp-api.json `servers`).
API_STAGE_NAME = "live"  # URLs are <ApiUrl>/v1/...: the version lives in the path, not the stage

# construct ids inside the Api stack
LAMBDA_LAYER_ID = "DependenciesLayer"
PIPELINE_FUNCTIONS_ID = "Functions"
PIPELINE_ID = "Pipeline"
EXPRESS_STATE_MACHINE_ID = "ExpressStateMachine"
STANDARD_STATE_MACHINE_ID = "StandardStateMachine"
PIPELINE_KEY_ID = "Key"  # the state machines' customer-managed key (stacks/pipeline_encryption.py)
REST_API_ID = "RestApi"
WEB_ACL_ID = "WebAcl"

OUTPUT_API_ID = "ApiId"
OUTPUT_STATE_MACHINE_ARN = "StateMachineArn"
OUTPUT_JOBS_STATE_MACHINE_ARN = "JobsStateMachineArn"
OUTPUT_API_KEY_ID = "ApiKeyId"
OUTPUT_USER_POOL_ID = "UserPoolId"
OUTPUT_USER_POOL_CLIENT_ID = "UserPoolClientId"
