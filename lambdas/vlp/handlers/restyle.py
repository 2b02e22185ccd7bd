"""Pipeline step `restyle` (vlp.steps, docs/pipeline.md): the image re-created in a style (role restyle, SDXL
img2img; the endpoint reads the image and writes the PNG itself, so this step has no S3 client)."""

from vlp.entry import step_entry

handler = step_entry("restyle")
