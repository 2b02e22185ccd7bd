"""Our Whisper container (docs/model-contracts.md, "Whisper"): raw audio bytes in, options in SageMaker's
CustomAttributes header, ``{"text", "language", "segments", "task", ...}`` out.

``translate=True`` asks for ``task=translate``: the text comes back in English, ``language`` stays the spoken
(detected or given) language."""

from __future__ import annotations

from typing import Any

from vlp.errors import ModelFailedError, model_error
from vlp.inference.sagemaker import Endpoint, Invocation, invoke, parse_json

CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
}


def custom_attributes(*, language: str | None = None, task: str = "transcribe", vad_filter: bool = True) -> str:
    parts = [f"task={task}", f"vad_filter={'true' if vad_filter else 'false'}"]
    if language:
        parts.insert(0, f"language={language}")
    return ";".join(parts)


def transcribe(
    client: Any,
    endpoint: Endpoint,
    audio: bytes,
    *,
    audio_format: str,
    language: str | None = None,
    translate: bool = False,
    step: str = "asr",
) -> tuple[dict[str, Any], Invocation]:
    task = "translate" if translate else "transcribe"
    invocation = invoke(
        client,
        endpoint,
        step=step,
        body=audio,
        content_type=CONTENT_TYPES[audio_format],
        custom_attributes=custom_attributes(language=language, task=task),
    )
    body = parse_json(invocation, step=step, role=endpoint.role)
    return parse_transcription(body, step=step, requested_task=task), invocation


def parse_transcription(
    body: Any, *, step: str = "asr", role: str = "asr", requested_task: str = "transcribe"
) -> dict[str, Any]:
    """The fields the pipeline uses; ``task`` is what the server says it did (the requested task when it does not
    say: containers before the field existed)."""
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise model_error(ModelFailedError, step, f"The {role} model returned an unexpected response (no text).")
    duration = body.get("duration")
    probability = body.get("language_probability")
    task = body.get("task") if body.get("task") in ("transcribe", "translate") else requested_task
    return {
        "task": task,
        "text": body["text"].strip(),
        "language": body.get("language") if isinstance(body.get("language"), str) else None,
        "language_probability": float(probability) if isinstance(probability, (int, float)) else None,
        "duration": float(duration) if isinstance(duration, (int, float)) else None,
        "model": body.get("model") if isinstance(body.get("model"), str) else None,
        "random_weights": body.get("random_weights") is True,
    }
