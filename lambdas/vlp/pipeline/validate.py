"""The validate step: execution input -> pipeline context (docs/pipeline.md, "Validate").

1. re-validate the request (an execution may be started by hand) and fail fast on a task whose model this
   environment does not deploy;
2. ownership: ``image_key`` and ``audio_key`` must lie under the execution's caller prefix (``caller``, set by
   the API function from the authenticated identity); another caller's key is UPLOAD_NOT_FOUND, word for word
   the answer for a missing object;
3. image: read it from S3 (bounded size) or decode the inline base64; decode, verify, bound its pixels, apply
   the EXIF orientation, flatten to RGB; copy the checked bytes (upload or inline) to
   inputs/<caller>/<request id>/source.<ext> (the overlay's canvas), the normalised image (long side <= 2048)
   and the VLM copy (<= 1024) beside it;
4. audio: read once (bounded size), format by magic bytes (wav, mp3, flac, ogg, webm), size and duration bounds
   checked on those bytes, which are then copied to inputs/<caller>/<request id>/audio.<ext>: the ASR step reads
   that copy only, so overwriting the upload after validation (its presigned POST stays valid for a while)
   changes nothing.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from vlp.errors import CallerError
from vlp.inference.whisper import CONTENT_TYPES as AUDIO_CONTENT_TYPES
from vlp.keys import input_key, owns
from vlp.pipeline import audio as audio_headers
from vlp.pipeline import storage
from vlp.pipeline.helpers import elapsed_ms, parse_execution_input
from vlp.requests import AnalyzeRequest, jobs_only_error
from vlp.settings import PipelineSettings
from vlp.steps import ROUTES, Route

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def check_available(request: AnalyzeRequest, settings: PipelineSettings, *, source: str = "jobs") -> None:
    """TASK_NOT_AVAILABLE before any model runs, when the request needs a role without an endpoint (the roles
    of its route: vlp.steps.ROUTES; ``auto`` learns its route later and falls back to describe); a jobs-only task
    started by POST /v1/analyze (``source``) is refused too (the Express machine has no branch for it)."""
    jobs_only = jobs_only_error(request.task) if source != "jobs" else None
    if jobs_only is not None:
        raise jobs_only
    needed: list[tuple[str, str]] = []
    if request.audio_key:
        needed.append(("asr", "Audio input"))
    if request.task == "auto" and not request.text and not request.audio_key:
        needed.append(("vlm", "Describing the image"))  # nothing to route on: describe
    elif request.task != "auto":
        route = Route(request.task)
        role = ROUTES[route].role
        what = "Describing the image" if route is Route.DESCRIBE else f"Task '{route.value}'"
        if role is not None:
            needed.append((role, what))
        if route is Route.SEGMENT and not request.labels:
            needed.append(("intent_keywords", "Task 'segment' without labels (keywords from the text)"))
        if route is Route.RESTYLE and request.prompt is None:
            needed.append(("clip_interrogator", "Task 'restyle' without a prompt (the image's description)"))
    for role, what in needed:
        if not settings.endpoint(role):
            raise CallerError(
                f"{what} needs the {role} model, which this environment does not deploy.", code="TASK_NOT_AVAILABLE"
            )


def _image(
    s3: Any, request: AnalyzeRequest, caller: str, request_id: str, settings: PipelineSettings
) -> dict[str, Any]:
    from vlp.pipeline.imaging import normalise

    bucket = settings.requests_bucket
    if request.image_key:
        data = storage.read(s3, bucket, request.image_key, max_bytes=settings.max_image_bytes)
    else:
        data = base64.b64decode(request.image_base64 or "")
    normalised = normalise(data, max_pixels=settings.max_image_pixels)
    # the bytes just checked, copied: the overlay reads this copy, never the upload (which may change later)
    source_key = input_key(caller, request_id, f"source.{_EXTENSIONS[normalised.format]}")
    storage.write(s3, bucket, source_key, data, _MEDIA_TYPES[normalised.format])
    key = input_key(caller, request_id, "image.jpg")
    vlm_key = input_key(caller, request_id, "vlm.jpg")
    storage.write(s3, bucket, key, normalised.jpeg, "image/jpeg")
    storage.write(s3, bucket, vlm_key, normalised.vlm_jpeg, "image/jpeg")
    return {
        "key": key,
        "vlm_key": vlm_key,
        "source_key": source_key,
        "format": normalised.format,
        "bytes": len(data),
        "width": normalised.width,
        "height": normalised.height,
        "original_width": normalised.original_width,
        "original_height": normalised.original_height,
    }


def _audio(s3: Any, key: str, caller: str, request_id: str, settings: PipelineSettings) -> tuple[dict[str, Any], bytes]:
    """The audio's reference (``key``: where its copy goes) and its bytes; nothing is written yet."""
    bucket = settings.requests_bucket
    # one bounded read: what is checked is exactly what is copied (and later transcribed)
    data = storage.read(s3, bucket, key, max_bytes=settings.max_audio_bytes, too_large="AUDIO_TOO_LARGE")
    size = len(data)
    if size == 0:
        raise CallerError("The audio file is empty.", code="INVALID_AUDIO")
    head = data[: audio_headers.HEAD_BYTES]
    audio_format = audio_headers.sniff(head)
    if audio_format is None:
        raise CallerError("The audio is not WAV, MP3, FLAC, Ogg or WebM.", code="UNSUPPORTED_AUDIO_FORMAT")
    tail = b""
    if audio_format == "ogg" and size > len(head):
        tail = data[max(0, size - audio_headers.TAIL_BYTES) :]
    try:
        seconds = audio_headers.duration(audio_format, head, size=size, tail=tail)
    except (audio_headers.AudioHeaderError, ValueError, IndexError) as error:
        raise CallerError(f"The {audio_format} header is corrupt: {error}", code="INVALID_AUDIO") from None
    if seconds is not None and seconds > settings.max_audio_seconds:
        raise CallerError(
            f"The audio lasts {seconds:.0f} s, above the {settings.max_audio_seconds} s allowed.", code="AUDIO_TOO_LONG"
        )
    return {
        "key": input_key(caller, request_id, f"audio.{audio_format}"),
        "source_key": key,
        "format": audio_format,
        "content_type": AUDIO_CONTENT_TYPES[audio_format],
        "bytes": size,
        "duration": round(seconds, 3) if seconds is not None else None,
    }, data


def run(event: Any, *, s3: Any, settings: PipelineSettings) -> dict[str, Any]:
    started = time.perf_counter()
    execution = parse_execution_input(event)
    request = execution.request
    check_available(request, settings, source=execution.source)
    caller, request_id = execution.caller, execution.request_id
    for key in (request.image_key, request.audio_key):
        if key is not None and not owns(caller, key):
            raise storage.not_found(key)
    # audio first: its checks are cheap, and a bad audio file should not leave normalised images behind
    audio, audio_bytes = (
        _audio(s3, request.audio_key, caller, request_id, settings) if request.audio_key else (None, b"")
    )
    image = _image(s3, request, caller, request_id, settings)
    if audio is not None:  # the copy last: a bad image leaves no audio behind either
        storage.write(s3, settings.requests_bucket, audio["key"], audio_bytes, audio["content_type"])
    return {
        "request_id": request_id,
        "caller": caller,
        "api_request_id": execution.api_request_id,
        "received_at_ms": execution.received_at_ms,
        "source": execution.source,
        "task": request.task,
        "text": request.text,
        "labels": request.labels,
        **(
            {"style": request.style, "style_prompt": request.style_prompt, "prompt": request.prompt}
            if request.task == Route.RESTYLE.value
            else {}
        ),
        "history": [turn.model_dump(mode="json") for turn in request.history] if request.history else None,
        "options": request.options.model_dump(mode="json"),
        "image": image,
        "audio": audio,
        "timings_ms": {"validate": elapsed_ms(started)},
        "warnings": (
            ["options.translate applies to audio, and the request has none: nothing was translated."]
            if request.options.translate and not request.audio_key
            else []
        ),
    }
