"""Pipeline step `plan` (docs/pipeline.md): sub-task plan (role llm), when the request asks for detail."""

from __future__ import annotations

from vlp import aws
from vlp.pipeline import generate
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

SETTINGS: PipelineSettings = load_settings(PipelineSettings)
SAGEMAKER = aws.sagemaker_runtime_client(SETTINGS.sagemaker_read_timeout_seconds)


@step_handler("plan")
def handler(event, context):
    return generate.run_plan(event, sagemaker=SAGEMAKER, settings=SETTINGS)
