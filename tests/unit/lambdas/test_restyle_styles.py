"""vlp.styles: the eight presets as data, and the prompt composed within CLIP's 77-token window."""

from __future__ import annotations

import typing

import pytest
from vlp import requests, styles
from vlp.styles import CONTENT_TOKENS, PRESETS, approx_tokens, compose, fit


def test_the_presets_are_the_apis_style_values():
    names = ("starry_night", "watercolor", "pencil_sketch", "studio_product", "anime", "pixel_art", "oil_painting")
    assert tuple(PRESETS) == (*names, "line_art") == typing.get_args(styles.Style)
    field = requests.AnalyzeRequest.model_fields["style"]
    assert typing.get_args(typing.get_args(field.annotation)[0]) == tuple(PRESETS)


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_leaves_room_for_the_description(name):
    preset = PRESETS[name]
    assert preset.prefix and preset.negative and preset.title
    assert approx_tokens(preset.prefix) <= CONTENT_TOKENS // 2  # at least half the window for the description
    composed = compose(name, None, "a dog on a beach", None)
    assert composed.prompt == f"{preset.prefix}, a dog on a beach" and not composed.truncated
    assert composed.negative_prompt == preset.negative


def test_a_style_prompt_replaces_the_preset_and_gets_the_generic_negative():
    composed = compose(None, "  in the style of a linocut ", "a dog", "  cars, trucks ")
    assert composed.prompt == "in the style of a linocut, a dog"
    assert composed.negative_prompt == f"{styles.BASE_NEGATIVE}, cars, trucks"


def test_the_count_leans_high_where_clip_splits_more():
    assert approx_tokens("a dog on a beach") == 5  # common words: one token each
    assert approx_tokens("photorealistic") == 4  # a long word: about one token per 4 characters
    assert approx_tokens("1024x768, 16-bit!") >= 11  # digits one by one, punctuation runs per character
    assert approx_tokens("ÉCOLE") == approx_tokens("école") > 3  # case-folded; accents cost bytes (byte-level BPE)
    assert approx_tokens("") == 0


def test_fit_cuts_at_a_word_boundary_within_the_budget():
    text = "alpha, " * 60 + "omega"
    cut, truncated = fit(text)
    assert truncated and approx_tokens(cut) <= CONTENT_TOKENS and text.startswith(cut)
    assert not cut.endswith(",") and cut.split()[-1] == "alpha"
    assert fit("short text") == ("short text", False)


def test_compose_reports_truncation_and_keeps_the_style_first():
    composed = compose("watercolor", None, "harbour " * 200, None)
    assert composed.truncated and composed.prompt.startswith(PRESETS["watercolor"].prefix + ", harbour")
    assert approx_tokens(composed.prompt) <= CONTENT_TOKENS
