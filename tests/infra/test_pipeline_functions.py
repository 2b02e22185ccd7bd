"""The request-path Lambda functions against docs/pipeline.md: runtime, architecture, tracing, memory, timeouts,
environment (checked with the functions' own settings models), code asset, layer and log groups."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cfn_values import ACCOUNT, render
from conftest import ROOT
from vlp import settings as lambda_settings

from stacks import constants as c
from stacks.lambda_layer import MissingBuildError, layer_directory


def documented_functions() -> dict[str, tuple[int, int | None]]:
    """docs/pipeline.md "Functions", row by row: function -> (memory in MB, timeout in s); the figure in brackets
    where the timeout is a sum; None for analyze's (the API integration timeout - 1 s)."""
    section = (ROOT / "docs" / "pipeline.md").read_text().split("\n## Functions\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[int, int | None]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[1].startswith("`vlp.handlers."):
            continue
        name, _, memory, timeout, _ = cells
        seconds = re.search(r"\((\d+) s|^(\d+) s$", timeout)
        assert seconds or timeout.startswith("API integration timeout"), line
        rows[name] = (int(memory.split(" MB", 1)[0]), int(seconds[1] or seconds[2]) if seconds else None)
    return rows


DOCUMENTED = documented_functions()
READ_TIMEOUTS = {"understand": 20, "tag": 30}  # the others: 65
READ_BY_POWERTOOLS = {c.ENV_LOG_LEVEL}  # Powertools' Logger reads it itself, not the settings models
SETTINGS_MODELS = {
    "uploads": lambda_settings.UploadsSettings,
    "analyze": lambda_settings.AnalyzeSettings,
    "jobs": lambda_settings.JobsSettings,
    **dict.fromkeys(c.STEP_FUNCTIONS, lambda_settings.PipelineSettings),
}


def function_name(config, name: str) -> str:
    """`vlp-dev-api-uploads`, `vlp-dev-step-answer` (`vlp-dev-vlm` is the VLM's endpoint)."""
    return f"{config.prefix}-{'api' if name in c.API_FUNCTIONS else 'step'}-{name}"


def api_stack(env: str) -> str:
    return f"{env}/{c.API_STACK_ID}"


def functions(assembly, env: str) -> dict[str, dict]:
    """name (uploads, validate, ...) -> properties of its AWS::Lambda::Function."""
    found = {}
    for resource in assembly.resources(api_stack(env), "AWS::Lambda::Function").values():
        properties = resource["Properties"]
        found[properties["Handler"].split(".")[2]] = properties
    return found


def test_one_function_per_documented_row(assembly, configs):
    for env in configs:
        assert set(functions(assembly, env)) == set(DOCUMENTED) == set(c.API_FUNCTIONS + c.STEP_FUNCTIONS)


def test_runtime_architecture_tracing_memory_timeout(assembly, configs):
    for env, config in configs.items():
        for name, properties in functions(assembly, env).items():
            memory, timeout = DOCUMENTED[name]
            expected_timeout = timeout if timeout is not None else config.api.sync_timeout_seconds - 1
            assert properties["Handler"] == f"vlp.handlers.{name}.handler"
            assert properties["Runtime"] == "python3.12", name
            assert properties["Architectures"] == ["arm64"], name
            assert properties["TracingConfig"] == {"Mode": "Active"}, name
            assert (properties["MemorySize"], properties["Timeout"]) == (memory, expected_timeout), (env, name)
            assert properties["FunctionName"] == function_name(config, name)


def test_model_steps_outlive_their_model_call(assembly, configs):
    for env in configs:
        for name, properties in functions(assembly, env).items():
            variables = properties["Environment"]["Variables"]
            if c.ENV_SAGEMAKER_READ_TIMEOUT_SECONDS in variables:
                read = int(variables[c.ENV_SAGEMAKER_READ_TIMEOUT_SECONDS])
                assert read == READ_TIMEOUTS.get(name, 65), name
                assert properties["Timeout"] >= read + 10, name


def test_environment_is_what_each_settings_model_reads(assembly, configs):
    """Every variable is one the function's settings model knows, every required one is set, and the real
    settings model accepts the synthesized environment."""
    roles = set(c.MODEL_ROLES)
    for env in configs:
        for name, properties in functions(assembly, env).items():
            model = SETTINGS_MODELS[name]
            variables = {k: render(v) for k, v in properties["Environment"]["Variables"].items()}
            aliases = {field.alias for field in model.model_fields.values() if field.alias} | READ_BY_POWERTOOLS
            required = {field.alias for field in model.model_fields.values() if field.alias and field.is_required()}
            if issubclass(model, lambda_settings.PipelineSettings):
                aliases |= {lambda_settings.endpoint_env_var(r) for r in roles}
                aliases |= {lambda_settings.inference_component_env_var(r) for r in roles}
            assert set(variables) <= aliases, (env, name, set(variables) - aliases)
            assert required <= set(variables), (env, name)
            settings = lambda_settings.load_settings(model, variables)
            assert settings.requests_bucket == f"vlp-{env}-requests-{ACCOUNT}-us-east-1"


def test_constants_name_the_variables_the_lambdas_read():
    assert lambda_settings.endpoint_env_var("clip_tagging") == c.endpoint_env_var("clip_tagging")
    assert lambda_settings.inference_component_env_var("vlm") == c.inference_component_env_var("vlm")
    assert lambda_settings.ROLES == c.MODEL_ROLES
    pipeline_aliases = {f.alias for f in lambda_settings.PipelineSettings.model_fields.values()}
    for name in (
        "SAGEMAKER_READ_TIMEOUT_SECONDS",
        "VLM_MESSAGES_API",
        "VLM_IMAGE_TRANSPORT",
    ):
        assert getattr(c, f"ENV_{name}") in pipeline_aliases
    assert c.ENV_CORS_ALLOW_ORIGINS in {f.alias for f in lambda_settings.UploadsSettings.model_fields.values()}


def test_steps_share_one_environment_with_every_endpoint(assembly, configs):
    for env, config in configs.items():
        found = functions(assembly, env)
        shared = None
        for name in c.STEP_FUNCTIONS:
            variables = dict(found[name]["Environment"]["Variables"])
            variables.pop(c.ENV_SAGEMAKER_READ_TIMEOUT_SECONDS, None)
            assert shared is None or variables == shared, name
            shared = variables
        for role, model in config.models.items():
            expected = f"{config.prefix}-{role.replace('_', '-')}" if model.enabled else ""
            assert shared[c.endpoint_env_var(role)] == expected, (env, role)
            component = f"{expected}-ic" if model.enabled and model.scaling.scale_to_zero else ""
            assert shared[c.inference_component_env_var(role)] == component, (env, role)


def test_api_functions_get_the_api_settings(assembly, configs):
    for env, config in configs.items():
        found = functions(assembly, env)
        uploads = found["uploads"]["Environment"]["Variables"]
        assert uploads[c.ENV_MAX_UPLOAD_BYTES] == str(config.api.max_upload_bytes)
        for name in c.API_FUNCTIONS:
            variables = found[name]["Environment"]["Variables"]
            assert variables[c.ENV_PRESIGN_EXPIRY_SECONDS] == str(config.api.presign_expiry_seconds)
            assert variables[c.ENV_CORS_ALLOW_ORIGINS] == ",".join(config.api.cors_origins)
        analyze = render(found["analyze"]["Environment"]["Variables"][c.ENV_STATE_MACHINE_ARN])
        jobs = render(found["jobs"]["Environment"]["Variables"][c.ENV_JOBS_STATE_MACHINE_ARN])
        assert analyze == f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{config.prefix}-pipeline"
        assert jobs == f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{config.prefix}-jobs"


def test_one_code_asset_and_one_layer_for_all(assembly, configs):
    for env in configs:
        found = functions(assembly, env)
        assert len({str(p["Code"]) for p in found.values()}) == 1
        layers = assembly.resources(api_stack(env), "AWS::Lambda::LayerVersion")
        assert len(layers) == 1
        ((layer_id, layer),) = layers.items()
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
        assert all(p["Layers"] == [{"Ref": layer_id}] for p in found.values())


def _asset_dirs(assembly, env: str) -> dict[str, Path]:
    """display name (`Functions/UploadsFunction/Function/Code`, `DependenciesLayer/Layer/Code`) -> staged directory"""
    (manifest,) = (assembly.outdir / f"assembly-{env}").glob(f"{env}{c.API_STACK_ID}*.assets.json")
    files = json.loads(manifest.read_text())["files"].values()
    return {f["displayName"]: manifest.parent / f["source"]["path"] for f in files if f["source"]["packaging"] == "zip"}


def test_code_asset_holds_the_handlers_and_nothing_compiled(assembly):
    (code,) = [d for name, d in _asset_dirs(assembly, "dev").items() if name.startswith(c.PIPELINE_FUNCTIONS_ID)]
    assert (code / "vlp" / "handlers" / "validate.py").is_file()
    assert not list(code.rglob("__pycache__")) and not list(code.rglob("*.pyc"))
    assert not (code / "stacks").exists() and not list(code.rglob("aws_cdk*"))


def test_layer_leaves_the_runtimes_boto_stack_alone(assembly):
    (layer,) = [d for name, d in _asset_dirs(assembly, "dev").items() if name.startswith(c.LAMBDA_LAYER_ID)]
    python = layer / "python"
    assert (python / "pydantic").is_dir() and (python / "aws_lambda_powertools").is_dir() and (python / "PIL").is_dir()
    for provided in ("botocore", "boto3", "jmespath", "urllib3", "dateutil", "s3transfer"):
        assert not (python / provided).exists(), provided


def test_one_log_group_with_retention_per_function(assembly, configs):
    for env, config in configs.items():
        groups = assembly.resources(api_stack(env), "AWS::Logs::LogGroup")
        # literal names (API Gateway's execution log group is named after the API's id: a token)
        names = {n for g in groups.values() if isinstance(n := g["Properties"].get("LogGroupName"), str)}
        for name, properties in functions(assembly, env).items():
            assert f"/aws/lambda/{function_name(config, name)}" in names
            assert "LogGroup" in properties["LoggingConfig"]
        assert all(g["Properties"].get("RetentionInDays") for g in groups.values())


def test_missing_layer_build_fails_synth_with_a_clear_message(tmp_path):
    with pytest.raises(MissingBuildError, match=re.escape("run `make build`")):
        layer_directory(tmp_path)
