"""Pipeline step `validate` (vlp.steps, docs/pipeline.md): execution input -> pipeline context (image normalised
into S3, audio checked)."""

from vlp.entry import step_entry

handler = step_entry("validate")
