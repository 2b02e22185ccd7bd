"""Pipeline step `transcribe` (vlp.steps, docs/pipeline.md): the audio through Whisper (role asr)."""

from vlp.entry import step_entry

handler = step_entry("transcribe")
