"""Pipeline step `understand` (vlp.steps, docs/pipeline.md): intent and keywords of the text in one call
(role intent_keywords), and the route."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp import aws
from vlp.pipeline import understand
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS: PipelineSettings = load_settings(PipelineSettings)
SAGEMAKER = aws.sagemaker_runtime_client(SETTINGS.sagemaker_read_timeout_seconds)


@step_handler("understand")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return understand.run(event, sagemaker=SAGEMAKER, settings=SETTINGS).model_dump(mode="json")
