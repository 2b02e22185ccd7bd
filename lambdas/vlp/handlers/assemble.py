"""Pipeline step `assemble` (docs/pipeline.md): the final response, the execution's output. No AWS clients."""

from __future__ import annotations

from vlp.pipeline import assemble
from vlp.runtime import step_handler
from vlp.settings import PipelineSettings, load_settings

SETTINGS: PipelineSettings = load_settings(PipelineSettings)


@step_handler("assemble")
def handler(event, context):
    return assemble.run(event)
