"""Task restyle's style presets, as data, and the prompt composition (docs/api.md "Task restyle").

A preset is a prompt prefix and a negative prompt. The prompt SDXL gets is ``<prefix>, <description>`` (the
description: the CLIP Interrogator's, or the caller's ``prompt``), cut to the text encoders' window: SDXL's two CLIP
tokenizers (the openai/clip-vit-large-patch14 rule) read 77 tokens, BOS + 75 content tokens + EOS, and drop the
rest. Lambda carries no tokenizer, so the count here is an approximation of CLIP's byte-pair encoding
(``approx_tokens``), kept on the safe side; the restyle container reports the exact truncation (its ``truncated``).

Standard library only (the request models import the preset names).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

CONTEXT_TOKENS = 77  # CLIP's text window (SDXL's both encoders)
CONTENT_TOKENS = CONTEXT_TOKENS - 2  # minus BOS and EOS
# Measured against CLIP's own BPE (open_clip's bpe_simple_vocab_16e6, the vocabulary of openai/clip-vit-large-patch14)
# on the presets and 8 interrogator-style descriptions: approx_tokens over-counts by 17 % (ASCII text) and under-counts
# by at most 1 token (a rare short word such as "impasto"); composition keeps 3 tokens in reserve for that.
SAFETY_TOKENS = 3
MAX_STYLE_PROMPT_CHARS = 300
MAX_PROMPT_CHARS = 1000  # the caller's description
MAX_NEGATIVE_PROMPT_CHARS = 300  # the caller's negative prompt, appended to the preset's
# A generic negative prompt for a caller's own style_prompt (no preset).
BASE_NEGATIVE = "lowres, blurry, jpeg artifacts, watermark, text, signature, deformed"

Style = Literal[
    "starry_night", "watercolor", "pencil_sketch", "studio_product", "anime", "pixel_art", "oil_painting", "line_art"
]


@dataclass(frozen=True)
class Preset:
    prefix: str  # what the prompt starts with
    negative: str  # the negative prompt
    title: str  # for documentation and UIs


PRESETS: dict[str, Preset] = {
    "starry_night": Preset(
        "in the style of Van Gogh's The Starry Night, swirling impasto brushstrokes, vivid blues and yellows",
        "photo, photorealistic, flat colors, " + BASE_NEGATIVE,
        "Van Gogh's The Starry Night",
    ),
    "watercolor": Preset(
        "watercolor painting, soft washes, bleeding edges, paper texture",
        "photo, photorealistic, hard edges, 3d render, " + BASE_NEGATIVE,
        "Watercolour",
    ),
    "pencil_sketch": Preset(
        "pencil sketch, graphite on paper, cross-hatching, monochrome",
        "color, colorful, photo, painting, " + BASE_NEGATIVE,
        "Pencil sketch",
    ),
    "studio_product": Preset(
        "professional studio product photo, softbox lighting, seamless white background, sharp focus",
        "cluttered background, painting, illustration, cartoon, " + BASE_NEGATIVE,
        "Studio product shot",
    ),
    "anime": Preset(
        "anime illustration, cel shading, clean line art, vibrant colors",
        "photo, photorealistic, 3d render, " + BASE_NEGATIVE,
        "Anime",
    ),
    "pixel_art": Preset(
        "pixel art, 16-bit video game sprite style, limited palette",
        "smooth gradients, photo, photorealistic, " + BASE_NEGATIVE,
        "Pixel art",
    ),
    "oil_painting": Preset(
        "classical oil painting on canvas, rich textured brushwork, chiaroscuro",
        "photo, photorealistic, digital art, " + BASE_NEGATIVE,
        "Oil painting",
    ),
    "line_art": Preset(
        "minimalist black and white line art, clean ink outlines",
        "color, shading, photo, photorealistic, " + BASE_NEGATIVE,
        "Line art",
    ),
}
assert tuple(PRESETS) == get_args(Style), "Style (the API's enum) and PRESETS name the same presets"

# CLIP's pre-tokenizer: contractions, letter runs, single digits, runs of other symbols (the tokenizer's regex).
_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+", re.IGNORECASE)
_COMMON_WORD_CHARS = 7  # a lowercase ASCII word up to this length is usually ONE token of CLIP's 49,408 merges
_CHARS_PER_TOKEN = 4  # longer or rarer words: about one token per 4 characters


def _piece_tokens(piece: str) -> int:
    if piece.isascii() and piece.isalpha():
        return 1 if len(piece) <= _COMMON_WORD_CHARS else math.ceil(len(piece) / _CHARS_PER_TOKEN)
    if piece.isascii():
        return len(piece)  # punctuation and digits: one token per character, at worst
    return len(piece.encode("utf-8"))  # non-ASCII: byte-level BPE, up to a token per byte


def approx_tokens(text: str) -> int:
    """An upper-leaning estimate of CLIP's token count for ``text`` (no BOS/EOS): lower-cased, split like CLIP's
    pre-tokenizer; a short ASCII word is one token, a long one about one per 4 characters, punctuation and digits
    one per character, other scripts one per UTF-8 byte."""
    return sum(_piece_tokens(piece) for piece in _PIECES.findall(text.lower()))


def fit(text: str, budget: int = CONTENT_TOKENS - SAFETY_TOKENS) -> tuple[str, bool]:
    """``text`` cut at a word boundary to at most ``budget`` approximate tokens; (the text, whether it was cut)."""
    if approx_tokens(text) <= budget:
        return text, False
    kept: list[str] = []
    used = 0
    for word in text.split():
        cost = approx_tokens(word)
        if used + cost > budget:
            break
        kept.append(word)
        used += cost
    return " ".join(kept).rstrip(" ,;:"), True


@dataclass(frozen=True)
class Composed:
    prompt: str
    negative_prompt: str
    truncated: bool


def compose(style: str | None, style_prompt: str | None, description: str, negative_prompt: str | None) -> Composed:
    """The prompt (``<style prefix>, <description>`` within the window) and the negative prompt (the preset's, then
    the caller's) for SDXL. ``style``: a preset name; ``style_prompt``: the caller's own prefix instead."""
    preset = PRESETS[style] if style is not None else None
    prefix = preset.prefix if preset is not None else (style_prompt or "").strip()
    joined = ", ".join(part for part in (prefix, description.strip()) if part)
    prompt, truncated = fit(joined)
    base = preset.negative if preset is not None else BASE_NEGATIVE
    extra = (negative_prompt or "").strip()
    return Composed(prompt, f"{base}, {extra}" if extra else base, truncated)
