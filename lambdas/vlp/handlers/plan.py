"""Pipeline step `plan` (vlp.steps, docs/pipeline.md): sub-tasks for a detailed answer (role llm)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp import aws
from vlp.pipeline import plan
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS: PipelineSettings = load_settings(PipelineSettings)
SAGEMAKER = aws.sagemaker_runtime_client(SETTINGS.sagemaker_read_timeout_seconds)


@step_handler("plan")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return plan.run(event, sagemaker=SAGEMAKER, settings=SETTINGS).model_dump(mode="json")
