"""Pipeline step `validate` (vlp.steps, docs/pipeline.md): execution input -> pipeline context (image normalised
into S3, audio checked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp import aws
from vlp.pipeline import validate
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS: PipelineSettings = load_settings(PipelineSettings)
S3 = aws.s3_client()


@step_handler("validate")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return validate.run(event, s3=S3, settings=SETTINGS)
