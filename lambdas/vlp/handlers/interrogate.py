"""Pipeline step `interrogate` (vlp.steps, docs/pipeline.md): route restyle's description of the image (role
clip_interrogator); skipped when the caller gave one."""

from vlp.entry import step_entry

handler = step_entry("interrogate")
