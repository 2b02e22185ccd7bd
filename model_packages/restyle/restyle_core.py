"""Restyle's request rules, without the model: field validation, S3 references, the output size, batching groups,
PNG encoding. model.py loads SDXL and serves; this module is plain Python + Pillow so its rules are cheap to test.

Contract: docs/model-contracts.md, "restyle".
"""

from __future__ import annotations

import io
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vlp_djl_support import RequestError, float_field, int_field

MAX_PROMPT_CHARS = 2000
MIN_STRENGTH, MAX_STRENGTH, DEFAULT_STRENGTH = 0.1, 1.0, 0.6
MIN_STEPS, MAX_STEPS, DEFAULT_STEPS = 1, 50, 30
MIN_GUIDANCE, MAX_GUIDANCE, DEFAULT_GUIDANCE = 0.0, 20.0, 7.0
MAX_SEED = 2**32 - 1
MAX_SIDE = 1024  # SDXL's native resolution: never generate above it
SIDE_MULTIPLE = 8  # the VAE's downsampling factor: latents are (side / 8) squared
MIN_SIDE = 64
IMAGE_KEY_PREFIX = "inputs/"  # the requests bucket's normalised images (lambdas/vlp/keys.py)
OUTPUT_KEY_PREFIX = "results/"
MAX_KEY_CHARS = 1024  # S3's limit on a key's UTF-8 length
# S3 bucket naming rules: 3..63 lower-case letters, digits, dots and hyphens, starting and ending alphanumeric.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

# Codes beyond the shared ones (vlp_djl_support.STATUS_BY_CODE), raised by model.py with their statuses:
# IMAGE_NOT_FOUND 404, ACCESS_DENIED 403, OUT_OF_MEMORY 503 and STORAGE_FAILURE 502 (both retryable).


@dataclass(frozen=True)
class S3Ref:
    bucket: str
    key: str


@dataclass
class RestyleRequest:
    """One validated request. `image` (RGB PIL image at the output size) is filled in by model.py's parse."""

    prompt: str
    negative_prompt: str | None
    strength: float
    steps: int
    guidance_scale: float
    seed: int
    seed_drawn: bool
    output: S3Ref
    image_ref: S3Ref | None  # None when the image came inline (base64)
    image: Any = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size if self.image is not None else (0, 0)

    def group_key(self) -> tuple:
        """Requests that can share one pipeline call: the same output size, schedule and guidance, and either all
        or none with a negative prompt (diffusers takes one list of negative prompts or None for the batch)."""
        return (self.size, self.steps, self.strength, self.guidance_scale, self.negative_prompt is None)


def text_field(body: Mapping, name: str, *, required: bool, max_chars: int) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise RequestError("INVALID_REQUEST", f"'{name}' is required: a string of 1 to {max_chars} characters")
        return None
    if not isinstance(value, str):
        raise RequestError("INVALID_REQUEST", f"'{name}' must be a string")
    if "\x00" in value:
        raise RequestError("INVALID_REQUEST", f"'{name}' must not contain NUL characters")
    if len(value) > max_chars:
        raise RequestError("VALUE_OUT_OF_RANGE", f"'{name}' has {len(value)} characters; at most {max_chars}")
    if not value.strip():
        if required:
            raise RequestError("INVALID_REQUEST", f"'{name}' must not be empty")
        return None  # an empty negative prompt is no negative prompt
    return value


def s3_ref(body: Mapping, name: str, prefix: str, suffix: str | None = None) -> S3Ref:
    value = body.get(name)
    if not isinstance(value, dict):
        raise RequestError("INVALID_REQUEST", f'\'{name}\' must be an object {{"bucket": ..., "key": ...}}')
    bucket, key = value.get("bucket"), value.get("key")
    if not isinstance(bucket, str) or not BUCKET_NAME.match(bucket):
        raise RequestError("INVALID_REQUEST", f"'{name}.bucket' must be an S3 bucket name")
    if not isinstance(key, str) or not key:
        raise RequestError("INVALID_REQUEST", f"'{name}.key' must be a non-empty string")
    if len(key.encode("utf-8")) > MAX_KEY_CHARS or any(ord(ch) < 32 for ch in key):
        raise RequestError("INVALID_REQUEST", f"'{name}.key' is not a valid S3 key")
    parts = key.split("/")
    if not key.startswith(prefix) or any(part in ("", ".", "..") for part in parts[1:]):
        raise RequestError("INVALID_REQUEST", f"'{name}.key' must be a key under {prefix} (no empty or dot segments)")
    if suffix and not key.endswith(suffix):
        raise RequestError("INVALID_REQUEST", f"'{name}.key' must end with {suffix}")
    return S3Ref(bucket, key)


def seed_field(body: Mapping) -> tuple[int, bool]:
    """The request's seed, or one drawn here (then reported): (seed, drawn)."""
    if body.get("seed") is None:
        return secrets.randbelow(MAX_SEED + 1), True
    return int_field(body, "seed", 0, 0, MAX_SEED), False


def parse_fields(body: Mapping) -> RestyleRequest:
    """Every field but the image's pixels. Raises RequestError (4xx) on the first bad field."""
    prompt = text_field(body, "prompt", required=True, max_chars=MAX_PROMPT_CHARS)
    assert prompt is not None  # required=True
    negative = text_field(body, "negative_prompt", required=False, max_chars=MAX_PROMPT_CHARS)
    strength = float_field(body, "strength", DEFAULT_STRENGTH, MIN_STRENGTH, MAX_STRENGTH)
    steps = int_field(body, "steps", DEFAULT_STEPS, MIN_STEPS, MAX_STEPS)
    guidance = float_field(body, "guidance_scale", DEFAULT_GUIDANCE, MIN_GUIDANCE, MAX_GUIDANCE)
    seed, drawn = seed_field(body)
    output = s3_ref(body, "output", OUTPUT_KEY_PREFIX, ".png")
    image = body.get("image")
    if image is None:
        raise RequestError("INVALID_REQUEST", '\'image\' is required: {"bucket": ..., "key": "inputs/..."}')
    image_ref = None if isinstance(image, str) else s3_ref(body, "image", IMAGE_KEY_PREFIX)
    return RestyleRequest(prompt, negative, strength, steps, guidance, seed, drawn, output, image_ref)


def output_size(width: int, height: int) -> tuple[int, int]:
    """The generated image's size: scaled so the long side is at most 1024 (never up), each side then rounded down
    to a multiple of 8, at least 64."""
    scale = min(1.0, MAX_SIDE / max(width, height))
    return tuple(  # type: ignore[return-value]  # two sides in, two out
        max(MIN_SIDE, int(side * scale + 1e-9) // SIDE_MULTIPLE * SIDE_MULTIPLE) for side in (width, height)
    )


def fit_to_output(image: Any) -> Any:
    """The RGB image resized (Lanczos) to output_size; unchanged when it already has that size."""
    from PIL import Image

    size = output_size(*image.size)
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def denoising_schedule(steps: int, strength: float) -> tuple[int, int]:
    """(num_inference_steps for diffusers, denoising steps that run). img2img runs int(steps * strength) of the
    schedule; when that is 0 (steps=1, strength=0.5) diffusers refuses, so the schedule is lengthened until one
    step runs: the fewest steps at that strength."""
    total = steps
    while int(total * strength) < 1:
        total += 1
    return total, min(int(total * strength), total)


def groups(requests: Iterable[RestyleRequest], max_batch: int) -> list[list[int]]:
    """Indices of `requests` in pipeline calls: same group_key together, in arrival order, at most max_batch each."""
    by_key: dict[tuple, list[int]] = {}
    for i, request in enumerate(requests):
        by_key.setdefault(request.group_key(), []).append(i)
    calls = []
    for members in by_key.values():
        calls += [members[start : start + max_batch] for start in range(0, len(members), max_batch)]
    return calls


def png_bytes(image: Any) -> bytes:
    """PNG of a PIL image at zlib level 1: on a 1024x1024 picture about 4x faster than Pillow's default 6 (80 vs
    310 ms on one CPU core) for about a third more bytes, which only travel to S3 (bench/restyle.py)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def rounded_ms(seconds: float) -> float:
    return round(seconds * 1000, 1) if math.isfinite(seconds) else 0.0
