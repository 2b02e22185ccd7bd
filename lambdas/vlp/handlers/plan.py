"""Pipeline step `plan` (vlp.steps, docs/pipeline.md): sub-tasks for a detailed answer (role llm)."""

from vlp.entry import step_entry

handler = step_entry("plan")
