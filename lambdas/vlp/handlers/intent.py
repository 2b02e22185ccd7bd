"""Pipeline step `intent` (docs/pipeline.md): intent of the text (role intent_keywords) and the route."""

from __future__ import annotations

from vlp import aws
from vlp.pipeline import understand
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

SETTINGS: PipelineSettings = load_settings(PipelineSettings)
SAGEMAKER = aws.sagemaker_runtime_client(SETTINGS.sagemaker_read_timeout_seconds)


@step_handler("intent")
def handler(event, context):
    return understand.run_intent(event, sagemaker=SAGEMAKER, settings=SETTINGS)
