"""Pipeline step `prompt` (vlp.steps, docs/pipeline.md): a text-to-image prompt for the image
(role clip_interrogator)."""

from vlp.entry import step_entry

handler = step_entry("prompt")
