"""Audio bytes -> 16 kHz mono float32 samples, with the size and duration limits checked before any model work.

PyAV (FFmpeg) decodes every container the contract accepts (WAV, MP3, FLAC, Ogg Vorbis/Opus, WebM) by probing the
bytes; the declared content type only gates what is accepted. The decoder stops as soon as the decoded audio passes
`max_seconds`, so a small file that expands to hours of audio costs little.

Truncation: WAV and FLAC state their length exactly (the RIFF data chunk size, FLAC's STREAMINFO), so a file that ends
before it should is refused as undecodable rather than half transcribed. Streaming containers (MP3, Ogg, WebM) carry
no reliable length; their undecodable frames are skipped, as faster-whisper does, and only a stream that yields no
audio at all is refused.
"""

from __future__ import annotations

import gc
import io
import struct
from collections.abc import Generator
from typing import cast

import av
import numpy as np

from .errors import ApiError

SAMPLE_RATE = 16000  # what Whisper's feature extractor expects

# Content types accepted as raw audio bodies (parameters such as "; codecs=opus" are ignored).
AUDIO_CONTENT_TYPES = {
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/mpeg",
    "audio/mp3",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "audio/opus",
    "audio/webm",
    "video/webm",
    "application/octet-stream",  # a client that does not know: the decoder probes the bytes
}


def decode(data: bytes, *, max_seconds: float) -> np.ndarray:
    """Decode `data` to float32 mono samples at SAMPLE_RATE, refusing what is not audio or is too long."""
    if not data:
        raise ApiError("UNDECODABLE_AUDIO", "the request body is empty: send the audio bytes")
    truncated = _wav_truncation(data)
    if truncated is not None:
        raise ApiError(
            "UNDECODABLE_AUDIO",
            f"the WAV file is truncated: its data chunk declares {truncated[0]} bytes "
            f"but only {truncated[1]} are present",
        )
    max_samples = int(max_seconds * SAMPLE_RATE)
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise ApiError("UNDECODABLE_AUDIO", f"the body is not a supported audio file ({_reason(exc)})") from None
    resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    decode_error: Exception | None = None
    try:
        with container:
            if not container.streams.audio:
                raise ApiError("UNDECODABLE_AUDIO", "the file has no audio stream")
            stream = container.streams.audio[0]
            declared = _declared_seconds(container, stream)
            exact_length = container.format.name == "flac"  # WAV truncation is caught above, from the RIFF header
            if declared is not None and declared > max_seconds + 1.0:
                raise ApiError("AUDIO_TOO_LONG", f"the audio lasts {declared:.1f} s; the limit is {max_seconds:g} s")
            # a generator (typed as a plain Iterator), closed below
            frames = cast("Generator[av.AudioFrame, None, None]", container.decode(stream))
            try:
                while True:
                    try:
                        frame = next(frames)
                    except StopIteration:
                        break
                    except av.error.InvalidDataError as exc:  # a damaged frame: skip it, as faster-whisper does
                        decode_error = exc
                        continue
                    frame.pts = None
                    for out in resampler.resample(frame):
                        total += _append(chunks, out)
                    if total > max_samples:
                        raise ApiError("AUDIO_TOO_LONG", f"the audio lasts more than {max_seconds:g} s (the limit)")
            finally:
                frames.close()  # finish the decoder generator before its container closes
            for out in resampler.resample(None):
                total += _append(chunks, out)
    except av.error.FFmpegError as exc:
        raise ApiError("UNDECODABLE_AUDIO", f"the audio could not be decoded ({_reason(exc)})") from None
    finally:
        del resampler
        gc.collect()  # PyAV's resampler graph holds memory until collected (faster-whisper issue #390)
    if total > max_samples:
        raise ApiError("AUDIO_TOO_LONG", f"the audio lasts {total / SAMPLE_RATE:.1f} s; the limit is {max_seconds:g} s")
    if total == 0:
        detail = f" ({_reason(decode_error)})" if decode_error else ""
        raise ApiError("UNDECODABLE_AUDIO", f"the file holds no decodable audio{detail}")
    samples = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    seconds = total / SAMPLE_RATE
    if exact_length and declared is not None and seconds < declared - 0.1:
        raise ApiError(
            "UNDECODABLE_AUDIO",
            f"the FLAC file is truncated: it declares {declared:.2f} s of audio but only {seconds:.2f} s decode",
        )
    return samples


def _append(chunks: list[np.ndarray], frame) -> int:
    array = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    chunks.append(array)
    return array.shape[0]


def _declared_seconds(container, stream) -> float | None:
    """The length a WAV or FLAC header states (exact); None for formats whose length is only an estimate."""
    if container.format.name not in ("wav", "flac"):
        return None
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _wav_truncation(data: bytes) -> tuple[int, int] | None:
    """(declared, present) data-chunk sizes of a RIFF/WAVE file cut short; None if complete or not a WAV file.

    Streaming writers put 0 or 0xFFFFFFFF in the size fields until they finish; those are not truncation.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk_id == b"data":
            present = len(data) - body
            if size in (0, 0xFFFFFFFF) or present >= size:
                return None
            return size, present
        offset = body + size + (size & 1)
    return None  # no data chunk: FFmpeg reports that itself


def _reason(exc: Exception | None) -> str:
    if exc is None:
        return "unknown error"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.rstrip(".")
