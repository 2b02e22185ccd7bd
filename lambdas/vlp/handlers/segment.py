"""Pipeline step `segment` (vlp.steps, docs/pipeline.md): detections and masks (role grounded_sam)."""

from vlp.entry import step_entry

handler = step_entry("segment")
