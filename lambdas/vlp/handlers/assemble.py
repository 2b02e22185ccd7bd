"""Pipeline step `assemble` (vlp.steps, docs/pipeline.md): the final response, the execution's output
(no AWS clients)."""

from vlp.entry import step_entry

handler = step_entry("assemble")
