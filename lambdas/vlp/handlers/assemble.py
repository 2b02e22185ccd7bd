"""Pipeline step `assemble` (vlp.steps, docs/pipeline.md): the final response, the execution's output.
No AWS clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlp.pipeline import assemble
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS: PipelineSettings = load_settings(PipelineSettings)


@step_handler("assemble")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return assemble.run(event)
