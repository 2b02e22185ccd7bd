"""Pipeline step `understand` (vlp.steps, docs/pipeline.md): intent and keywords of the text in one call
(role intent_keywords), and the route."""

from vlp.entry import step_entry

handler = step_entry("understand")
