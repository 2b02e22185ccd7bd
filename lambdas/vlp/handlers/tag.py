"""Pipeline step `tag` (vlp.steps, docs/pipeline.md): labels scored against the image (role clip_tagging)."""

from vlp.entry import step_entry

handler = step_entry("tag")
