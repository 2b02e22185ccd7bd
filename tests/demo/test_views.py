"""demo/views.py: API results -> what the page shows; page controls -> the request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demo import views

SEGMENT: dict[str, Any] = {
    "request_id": "54c52a25-45a7-4c14-8056-696597417062",
    "task": "segment",
    "requested_task": "segment",
    "answer": "A red square on grey.",
    "intent": {"label": "segment", "score": 0.87, "scores": {}},
    "keywords": [{"keyword": "red square", "score": 0.74}],
    "transcript": None,
    "detections": [
        {
            "label": "red square",
            "score": 0.8234,
            "box": [110.0, 70.4, 209.6, 169.0],
            "mask": {"key": "k0", "area": 10000},
        },
        {"label": "red square", "score": 0.5, "box": [1, 2, 3, 4], "mask": {"key": "k1", "area": 4}},
        {"label": "grey", "score": 0.3, "box": [0, 0, 320, 240]},
    ],
    "tags": None,
    "prompt": None,
    "models": {
        "intent_keywords": {"model": "all-MiniLM-L6-v2", "random_weights": False},
        "grounded_sam": {"model": "tiny", "random_weights": True},
        "vlm": {"model": None, "random_weights": True},
    },
    "random_weights": True,
    "timings_ms": {"segment": 12.3, "total": 40.0},
    "warnings": ["Labels were deduplicated."],
}
TAG: dict[str, Any] = {
    "task": "tag",
    "answer": None,
    "tags": [{"label": "house", "score": 0.61234}, {"label": "ball", "score": 0.2}],
    "models": {"clip_tagging": {"model": "clip", "random_weights": False}},
    "random_weights": False,
    "warnings": [],
}
PROMPT: dict[str, Any] = {
    "task": "prompt",
    "answer": None,
    "prompt": {"prompt": "a red house, oil painting", "caption": "a house"},
}


def test_request_options_sends_only_what_moved_from_the_defaults():
    assert views.request_options(views.Controls()) == {}
    options = views.request_options(
        views.Controls(box_threshold=0.1, max_detections=7.0, temperature=0.7000001, max_new_tokens=128.4)
    )
    assert options == {"box_threshold": 0.1, "max_detections": 7, "temperature": 0.7, "max_new_tokens": 128}
    assert isinstance(options["max_detections"], int) and isinstance(options["max_new_tokens"], int)


def test_request_options_rounds_sliders_back_onto_a_default():
    assert views.request_options(views.Controls(box_threshold=0.35000001, top_k=5.2)) == {}


@pytest.mark.parametrize(
    ("typed", "labels"),
    [
        ("red square, ball", ["red square", "ball"]),
        ("  red   square \n\n ball,ball ,", ["red square", "ball"]),
        ("", None),
        (None, None),
        (" , \n ", None),
    ],
)
def test_parse_labels(typed, labels):
    assert views.parse_labels(typed) == labels


@pytest.mark.parametrize(
    ("text", "labels", "task", "audio", "problem"),
    [
        ("hi", None, "tag", False, "needs labels"),
        (None, None, "segment", False, "needs something to look for"),
        ("x" * 2001, None, "auto", False, "at most 2000"),
        (None, ["a"] * 501, "tag", False, "at most 500"),
        (None, ["y" * 101], "tag", False, "longer than 100"),
        ("hi", None, "draw", False, "Unknown task"),
    ],
)
def test_check_request_refuses_what_the_api_would(text, labels, task, audio, problem):
    refusal = views.check_request(text, labels, task, audio)
    assert refusal and problem in refusal


@pytest.mark.parametrize(
    ("text", "labels", "task", "audio"),
    [
        (None, None, "segment", True),  # a spoken question is something to look for
        (None, ["dog"], "segment", False),
        (None, None, "describe", False),
        (None, ["house"], "tag", False),
    ],
)
def test_check_request_accepts(text, labels, task, audio):
    assert views.check_request(text, labels, task, audio) is None


def _alternates(history):
    return [t["role"] for t in history] == ["user", "assistant"] * (len(history) // 2)


def test_history_keeps_the_newest_exchanges_within_the_api_limits():
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "text": f"turn {i}"} for i in range(40)]
    history = views.history_for_request(turns)
    assert len(history) == views.MAX_HISTORY_TURNS
    assert _alternates(history)  # starts with the user, ends with the assistant, as the API requires
    assert [t["text"] for t in history] == [f"turn {i}" for i in range(24, 40)]


def test_history_drops_old_exchanges_over_the_character_budget_and_blank_ones():
    turns = [
        {"role": "user", "text": "a" * 3000},
        {"role": "assistant", "text": "b" * 2000},
        {"role": "user", "text": "c" * 2000},
        {"role": "assistant", "text": "  "},  # a blank answer: the API refuses blank turns
        {"role": "user", "text": "d" * 2000},
        {"role": "assistant", "text": "e" * 1000},
        {"role": "user", "text": "f"},
        {"role": "assistant", "text": "g"},
    ]
    history = views.history_for_request(turns)
    assert sum(len(t["text"]) for t in history) <= views.MAX_HISTORY_CHARS
    assert [t["text"][0] for t in history] == ["d", "e", "f", "g"]
    assert _alternates(history)


def test_history_skips_turns_out_of_order():
    turns = [
        {"role": "assistant", "text": "stray"},
        {"role": "user", "text": "q1"},
        {"role": "assistant", "text": "a1"},
        {"role": "user", "text": "unanswered"},
    ]
    assert views.history_for_request(turns) == [{"role": "user", "text": "q1"}, {"role": "assistant", "text": "a1"}]
    assert views.history_for_request([]) == []


def test_detection_rows():
    rows = views.detection_rows(SEGMENT)
    assert rows[0] == [0, "red square", 0.8234, "110, 70, 210, 169", 10000]
    assert rows[2] == [2, "grey", 0.3, "0, 0, 320, 240", None]
    assert views.detection_rows(TAG) == []


def test_tag_rows_and_prompt():
    assert views.tag_rows(TAG) == [["house", 0.6123], ["ball", 0.2]]
    assert views.prompt_text(PROMPT) == "a red house, oil painting"
    assert views.prompt_text(TAG) == ""


def test_banner_names_the_random_roles_and_is_empty_for_real_models():
    banner = views.banner_html(SEGMENT)
    assert views.RANDOM_WEIGHTS_LABEL in banner and 'id="vlp-random-banner"' in banner
    assert "grounded_sam, vlm" in banner and "intent_keywords" not in banner
    assert views.banner_html(TAG) == ""
    assert views.banner_html(None) == ""


def test_banner_escapes_role_names():
    result = {"random_weights": True, "models": {"<script>": {"random_weights": True}}}
    assert "<script>" not in views.banner_html(result)


def test_assistant_text_per_task():
    segment = views.assistant_text(SEGMENT)
    assert segment.startswith("A red square on grey.")
    assert "Found 3 object(s): grey, red square." in segment
    assert views.RANDOM_WEIGHTS_LABEL in segment
    tag = views.assistant_text(TAG)
    assert tag == "Tags: house (0.61), ball (0.20)."
    assert views.assistant_text(PROMPT) == "Prompt: a red house, oil painting"
    assert "Found nothing" in views.assistant_text({"task": "segment", "detections": []})


def test_history_text_is_the_answer_without_labels():
    assert views.history_text(SEGMENT) == "A red square on grey."
    assert views.history_text(TAG) == "Tags: house, ball"
    assert views.history_text(PROMPT) == "a red house, oil painting"
    assert views.history_text({"task": "segment", "answer": None, "detections": [{"label": "dog"}]}) == (
        "Found 1 object(s): dog."
    )
    assert views.history_text({"task": "tag", "tags": []}) == "Tags: none"
    assert views.history_text({"task": "describe", "answer": " "}) == "(no answer)"


def test_user_text_shows_the_transcript():
    assert views.user_text("what is this?", None, None) == "what is this?"
    assert views.user_text(None, " a spoken question ", "q.wav") == "(spoken) a spoken question"
    assert views.user_text("  ", None, "q.wav") == "(spoken: q.wav)"
    assert views.user_text(None, None, None) == "(describe the image)"


def test_transcript_of_both_shapes():
    assert views.transcript_of({"transcript": {"text": "hello", "language": "en"}}) == "hello"
    assert views.transcript_of({"transcript": {"text": ""}}) is None
    assert views.transcript_of({"transcript": None}) is None


def test_warnings_and_details():
    assert views.warnings_markdown(SEGMENT, ["page note"]) == "- ⚠ Labels were deduplicated.\n- ⚠ page note"
    assert views.warnings_markdown(TAG) == ""
    details = views.details_markdown({**SEGMENT, "transcript": {"text": "hi", "language": "en"}})
    assert "`segment`" in details and "red square (0.74)" in details and "hi (`en`)" in details
    assert "segment 12 ms" in details and "grounded_sam: tiny (random)" in details
    assert SEGMENT["request_id"] in details


def test_error_text_is_the_clis_format():
    assert views.error_text("MISSING_LABELS", "Task tag needs labels.", "r-1") == (
        "error MISSING_LABELS: Task tag needs labels. (request id r-1)"
    )
    assert views.error_text("NETWORK_ERROR", "refused", None) == "error NETWORK_ERROR: refused"


def test_downloaded_files_sorted_by_detection():
    files = [Path(n) for n in ("result.json", "mask-10.png", "mask-2.png", "overlay.png", "mask-0.png", "mask-x.png")]
    assert [p.name for p in views.mask_files(files)] == ["mask-0.png", "mask-2.png", "mask-10.png"]
    assert views.overlay_file(files) == Path("overlay.png")
    assert views.overlay_file(files[:3]) is None


def test_annotation_labels_number_repeated_labels():
    assert views.annotation_labels(SEGMENT) == ["0: red square 0.82", "1: red square 0.50", "grey 0.30"]
