"""The transcribe step: the uploaded audio through Whisper; the transcript joins the text of the request.

With ``options.translate`` Whisper translates the speech to English (``task=translate``): that English text is
what intent and keywords read, and the response's transcript says ``translated: true`` next to the spoken
``language``."""

from __future__ import annotations

import time
from typing import Any

from vlp.inference import whisper
from vlp.keys import input_prefix
from vlp.pipeline import storage
from vlp.pipeline.helpers import elapsed_ms, is_random_model, parse_context, require_endpoint
from vlp.pipeline.models import TranscribeResult
from vlp.settings import PipelineSettings

MAX_TRANSCRIPT_CHARS = 20_000  # keeps the state small; intent/keywords read the first 2,000 anyway


def run(event: Any, *, s3: Any, sagemaker: Any, settings: PipelineSettings) -> TranscribeResult:
    started = time.perf_counter()
    context = parse_context(event)
    if context.audio is None:
        return TranscribeResult(skipped=True, reason="no audio", elapsed_ms=elapsed_ms(started))
    endpoint = require_endpoint(settings, "asr", what="Audio input")
    if not context.audio.key.startswith(input_prefix(context.caller, context.request_id)):
        # the validate step's copy only: never the caller's upload, which may have changed since
        raise ValueError("the transcribe step reads the validated copy under inputs/<caller>/<request id>/ only")
    audio = storage.read(
        s3, settings.requests_bucket, context.audio.key, max_bytes=settings.max_audio_bytes, too_large="AUDIO_TOO_LARGE"
    )
    transcript, invocation = whisper.transcribe(
        sagemaker,
        endpoint,
        audio,
        audio_format=context.audio.format,
        language=context.options.language,
        translate=context.options.translate,
    )
    text = transcript["text"]
    return TranscribeResult(
        text=text[:MAX_TRANSCRIPT_CHARS],
        truncated=len(text) > MAX_TRANSCRIPT_CHARS,
        language=transcript["language"],
        translated=transcript["task"] == "translate",
        duration=transcript["duration"],
        model=transcript["model"],
        random_weights=is_random_model(transcript["model"], flag=transcript["random_weights"]),
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
    )
