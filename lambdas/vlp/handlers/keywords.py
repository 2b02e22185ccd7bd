"""Pipeline step `keywords` (docs/pipeline.md): keywords of the text (role intent_keywords)."""

from __future__ import annotations

from vlp import aws
from vlp.pipeline import understand
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

SETTINGS: PipelineSettings = load_settings(PipelineSettings)
SAGEMAKER = aws.sagemaker_runtime_client(SETTINGS.sagemaker_read_timeout_seconds)


@step_handler("keywords")
def handler(event, context):
    return understand.run_keywords(event, sagemaker=SAGEMAKER, settings=SETTINGS)
