"""The Lambda environment is validated at cold start; names match stacks/constants.py."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from vlp.errors import ConfigurationError
from vlp.settings import (
    ROLES,
    AnalyzeSettings,
    JobsSettings,
    PipelineSettings,
    UploadsSettings,
    endpoint_env_var,
    load_settings,
)
from vlp_testkit import ROOT

BASE = {"REQUESTS_BUCKET": "vlp-dev-requests-123456789012"}
ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:vlp-dev-Pipeline"


def test_names_match_the_cdk_constants():
    constants = importlib.import_module("stacks.constants")
    assert ROLES == constants.MODEL_ROLES
    for role in ROLES:
        assert endpoint_env_var(role) == constants.endpoint_env_var(role)
    fields = {
        field.alias
        for model in (UploadsSettings, AnalyzeSettings, JobsSettings, PipelineSettings)
        for field in model.model_fields.values()
        if field.alias
    }
    for name in (
        "ENV_REQUESTS_BUCKET",
        "ENV_STATE_MACHINE_ARN",
        "ENV_JOBS_STATE_MACHINE_ARN",
        "ENV_MAX_UPLOAD_BYTES",
        "ENV_PRESIGN_EXPIRY_SECONDS",
        "ENV_POWERTOOLS_SERVICE_NAME",
        "ENV_POWERTOOLS_METRICS_NAMESPACE",
    ):
        assert getattr(constants, name) in fields, name
    assert PipelineSettings.model_fields["metrics_namespace"].default == constants.METRICS_NAMESPACE


def test_pipeline_settings_read_endpoints_and_treat_empty_as_not_deployed():
    env = {
        **BASE,
        "ENDPOINT_VLM": "vlp-dev-vlm",
        "ENDPOINT_LLM": "",
        "INFERENCE_COMPONENT_VLM": "vlp-dev-vlm-ic",
        "VLM_MESSAGES_API": "true",
        "SAGEMAKER_READ_TIMEOUT_SECONDS": "30",
    }
    settings = load_settings(PipelineSettings, env)
    assert settings.endpoint("vlm") == "vlp-dev-vlm"
    assert settings.inference_component("vlm") == "vlp-dev-vlm-ic"
    assert settings.endpoint("llm") is None and settings.endpoint("asr") is None
    assert settings.vlm_messages_api is True
    assert settings.sagemaker_read_timeout_seconds == 30
    assert settings.max_image_pixels == 40_000_000 and settings.metrics_namespace == "VLP"


@pytest.mark.parametrize(
    ("model", "env", "names"),
    [
        (PipelineSettings, {}, ["REQUESTS_BUCKET"]),
        (AnalyzeSettings, BASE, ["STATE_MACHINE_ARN"]),
        (AnalyzeSettings, {**BASE, "STATE_MACHINE_ARN": "vlp-dev-Pipeline"}, ["STATE_MACHINE_ARN"]),
        (
            JobsSettings,
            {**BASE, "JOBS_STATE_MACHINE_ARN": ARN.replace("stateMachine", "activity")},
            ["JOBS_STATE_MACHINE_ARN"],
        ),
        (
            UploadsSettings,
            {**BASE, "MAX_UPLOAD_BYTES": "lots", "PRESIGN_EXPIRY_SECONDS": "5"},
            ["MAX_UPLOAD_BYTES", "PRESIGN_EXPIRY_SECONDS"],
        ),
        (PipelineSettings, {**BASE, "VLM_MESSAGES_API": "maybe"}, ["VLM_MESSAGES_API"]),
        (PipelineSettings, {**BASE, "ENDPOINT_VLM": "not a name!"}, ["endpoints"]),
        (PipelineSettings, {**BASE, "MAX_AUDIO_BYTES": str(10 * 1024 * 1024)}, ["MAX_AUDIO_BYTES"]),
    ],
)
def test_bad_environment_fails_naming_every_variable(model, env, names):
    with pytest.raises(ConfigurationError) as info:
        load_settings(model, env)
    for name in names:
        assert name in info.value.message
    assert info.value.code == "CONFIGURATION_ERROR"


def test_a_handler_fails_its_cold_start_without_its_environment():
    code = "import vlp.handlers.analyze"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT / "lambdas"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "REQUESTS_BUCKET": "vlp-dev-requests",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr and "STATE_MACHINE_ARN" in result.stderr
