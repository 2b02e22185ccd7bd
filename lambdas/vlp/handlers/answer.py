"""Pipeline step `answer` (vlp.steps, docs/pipeline.md): the VLM's answer about the image (role vlm)."""

from vlp.entry import step_entry

handler = step_entry("answer")
