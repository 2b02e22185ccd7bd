"""Task `restyle` on the client side: the style presets, the API's limits on its fields, and the checks the client
makes before sending (docs/api.md). The API stays the authority: these checks only turn a request it would refuse
into a clear error before an upload and a queued job."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vlp_client.errors import VlpError

TASK = "restyle"
# The presets of the API (`style`): each a prompt prefix and a negative prompt on the service's side.
STYLES = (
    "starry_night",
    "watercolor",
    "pencil_sketch",
    "studio_product",
    "anime",
    "pixel_art",
    "oil_painting",
    "line_art",
)
MAX_STYLE_PROMPT_CHARS = 300
MAX_PROMPT_CHARS = 1000
MAX_NEGATIVE_PROMPT_CHARS = 300
DEFAULT_STRENGTH = 0.6
MIN_STRENGTH, MAX_STRENGTH = 0.1, 1.0
DEFAULT_STEPS = 30
MIN_STEPS, MAX_STEPS = 1, 50
DEFAULT_GUIDANCE_SCALE = 7.0
MIN_GUIDANCE_SCALE, MAX_GUIDANCE_SCALE = 0.0, 20.0
MAX_SEED = 2**32 - 1  # the image model's generator takes a 32-bit seed
# The options of `options` that restyle reads (besides the common ones such as interrogator_mode).
OPTIONS = ("strength", "steps", "guidance_scale", "negative_prompt", "seed")
OUTPUT_FILE = "restyled.png"


def _invalid(message: str) -> VlpError:
    return VlpError("INVALID_ARGUMENT", message)


def _number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{name} {value!r}: a number from {low:g} to {high:g}")
    if not low <= value <= high:
        raise _invalid(f"{name} {value:g}: from {low:g} to {high:g}")


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{name} {value!r}: a whole number from {low} to {high}")
    if not low <= value <= high:
        raise _invalid(f"{name} {value}: from {low} to {high}")


def _text(name: str, value: Any, limit: int, *, blank_ok: bool = False) -> None:
    if not isinstance(value, str):
        raise _invalid(f"{name}: text, not {type(value).__name__}")
    if not blank_ok and not value.strip():
        raise _invalid(f"{name} is blank: leave it out, or give 1 to {limit} characters")
    if len(value) > limit:
        raise _invalid(f"{name} is {len(value)} characters long: at most {limit}")


def check_request(
    task: str | None,
    style: str | None,
    style_prompt: str | None,
    prompt: str | None,
    options: Mapping[str, Any] | None,
) -> None:
    """Raise INVALID_ARGUMENT for restyle fields the API would refuse: an unknown preset, text out of its
    limits, an option out of its range, and for task restyle neither or both of `style` and `style_prompt`."""
    if style is not None and style not in STYLES:
        raise _invalid(f"style {style!r}: one of {', '.join(STYLES)} (or a style_prompt of your own)")
    if style_prompt is not None:
        _text("style_prompt", style_prompt, MAX_STYLE_PROMPT_CHARS)
    if prompt is not None:
        _text("prompt", prompt, MAX_PROMPT_CHARS)
    if task == TASK:
        if style is None and style_prompt is None:
            raise _invalid(f"task restyle needs a style (one of {', '.join(STYLES)}) or a style_prompt")
        if style is not None and style_prompt is not None:
            raise _invalid("task restyle takes a style or a style_prompt, not both")
    options = options or {}
    if options.get("strength") is not None:
        _number("strength", options["strength"], MIN_STRENGTH, MAX_STRENGTH)
    if options.get("steps") is not None:
        _integer("steps", options["steps"], MIN_STEPS, MAX_STEPS)
    if options.get("guidance_scale") is not None:
        _number("guidance_scale", options["guidance_scale"], MIN_GUIDANCE_SCALE, MAX_GUIDANCE_SCALE)
    if options.get("negative_prompt") is not None:
        _text("negative_prompt", options["negative_prompt"], MAX_NEGATIVE_PROMPT_CHARS, blank_ok=True)
    if task == TASK and options.get("seed") is not None:
        _integer("seed", options["seed"], 0, MAX_SEED)


def merge_options(options: Mapping[str, Any] | None, named: Mapping[str, Any]) -> dict[str, Any]:
    """`options` with the named options that are not None added; one given both ways with two values is an error."""
    merged = dict(options or {})
    for key, value in named.items():
        if value is None:
            continue
        if key in merged and merged[key] != value:
            raise _invalid(f"{key} given twice: {merged[key]!r} in options and {value!r}")
        merged[key] = value
    return merged
