"""Pipeline step `segment` (vlp.steps, docs/pipeline.md): detections and masks (role grounded_sam)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp import aws
from vlp.pipeline import segment
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS: PipelineSettings = load_settings(PipelineSettings)
S3 = aws.s3_client()
SAGEMAKER = aws.sagemaker_runtime_client(SETTINGS.sagemaker_read_timeout_seconds)


@step_handler("segment")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return segment.run(event, s3=S3, sagemaker=SAGEMAKER, settings=SETTINGS).model_dump(mode="json")
