"""What the demo page shows, computed from the API's JSON (plain functions: no Gradio, unit-tested).

Everything here takes the response body of POST /v1/analyze (docs/api.md; `AnalyzeResult.raw` in the client) or
the page's control values, and returns plain Python values: strings (Markdown or HTML), table rows, the request's
`options` and `history`. app.py wires them to components.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vlp_client import restyle as restyling

TASKS = ("auto", "describe", "segment", "tag", "prompt")

# The API's limits on a conversation (docs/api.md `history`): the oldest turns are dropped to fit.
MAX_HISTORY_TURNS = 16
MAX_HISTORY_CHARS = 8000
MAX_TEXT_CHARS = 2000
MAX_LABELS = 500
MAX_LABEL_CHARS = 100

RANDOM_WEIGHTS_LABEL = "⚠ random weights: this output is meaningless"

DETECTION_HEADERS = ["#", "label", "score", "box (x0, y0, x1, y1)", "mask area (px)"]
TAG_HEADERS = ["label", "score"]


@dataclass(frozen=True)
class Controls:
    """The page's sliders, each with the API's default (docs/api.md, options). Sliders hand over floats: the
    integer options are rounded when the request is built."""

    box_threshold: float = 0.35
    text_threshold: float = 0.25
    max_detections: float = 20
    tag_threshold: float = 0.0
    top_k: float = 5
    temperature: float = 0.0
    max_new_tokens: float = 256


INTEGER_OPTIONS = frozenset({"max_detections", "top_k", "max_new_tokens"})


def request_options(controls: Controls) -> dict[str, float | int]:
    """`options` for the request: only the controls moved away from the API's default, so a page left as it is
    sends `{}` (and works against a stack that predates an option). Sliders give floats: integers are rounded,
    fractions kept to 3 decimals."""
    defaults = Controls()
    options: dict[str, float | int] = {}
    for field in fields(Controls):
        value = getattr(controls, field.name)
        if value is None:
            continue
        normalised: float | int = round(value) if field.name in INTEGER_OPTIONS else round(float(value), 3)
        if normalised != getattr(defaults, field.name):
            options[field.name] = normalised
    return options


def parse_labels(text: str | None) -> list[str] | None:
    """Labels typed as one per line or comma-separated: stripped, empty ones and repeats dropped, order kept.
    None when there are none (the API then takes the text's keywords)."""
    if not text:
        return None
    labels: list[str] = []
    for part in re.split(r"[,\n]", text):
        label = " ".join(part.split())
        if label and label not in labels:
            labels.append(label)
    return labels or None


def check_request(text: str | None, labels: Sequence[str] | None, task: str, has_audio: bool) -> str | None:
    """What is wrong with the request before it is sent (the API would refuse it), or None."""
    if task not in TASKS:
        return f"Unknown task {task!r}: choose one of {', '.join(TASKS)}."
    if text and len(text) > MAX_TEXT_CHARS:
        return f"The question is {len(text)} characters long: at most {MAX_TEXT_CHARS}."
    if labels:
        if len(labels) > MAX_LABELS:
            return f"{len(labels)} labels: at most {MAX_LABELS}."
        long = [label for label in labels if len(label) > MAX_LABEL_CHARS]
        if long:
            return f"Label {long[0][:40]!r}… is longer than {MAX_LABEL_CHARS} characters."
    if task == "tag" and not labels:
        return "Task `tag` needs labels: type the candidate tags, one per line or separated by commas."
    if task == "segment" and not (text or labels or has_audio):
        return "Task `segment` needs something to look for: a question, a spoken question or labels."
    return None


def history_for_request(turns: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The earlier turns as the API takes them (`[{"role", "text"}]`): whole (user, assistant) exchanges, so the
    history alternates, starts with the user and ends with the assistant, as the API requires; the newest kept
    within 16 turns and 8,000 characters in all; exchanges with a blank side are left out."""
    exchanges: list[tuple[str, str]] = []
    index = 0
    while index + 1 < len(turns):
        asked, answered = turns[index], turns[index + 1]
        question, answer = (asked.get("text") or "").strip(), (answered.get("text") or "").strip()
        if asked.get("role") == "user" and answered.get("role") == "assistant":
            if question and answer:
                exchanges.append((question, answer))
            index += 2
        else:
            index += 1
    kept: list[dict[str, str]] = []
    total = 0
    for question, answer in reversed(exchanges):
        size = len(question) + len(answer)
        if len(kept) + 2 > MAX_HISTORY_TURNS or total + size > MAX_HISTORY_CHARS:
            break
        kept[:0] = [{"role": "user", "text": question}, {"role": "assistant", "text": answer}]
        total += size
    return kept


def _score(value: Any) -> float | None:
    return round(float(value), 4) if isinstance(value, int | float) else None


def detection_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    """One row per detection: index, label, score, box, mask area."""
    rows = []
    for index, detection in enumerate(result.get("detections") or []):
        box = detection.get("box") or []
        mask = detection.get("mask") or {}
        rows.append(
            [
                index,
                detection.get("label", ""),
                _score(detection.get("score")),
                ", ".join(f"{v:.0f}" for v in box),
                mask.get("area"),
            ]
        )
    return rows


def tag_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    """One row per tag, best first (as the API orders them)."""
    return [[tag.get("label", ""), _score(tag.get("score"))] for tag in result.get("tags") or []]


def prompt_text(result: Mapping[str, Any]) -> str:
    """The generated text-to-image prompt (task `prompt`), or ''."""
    prompt = result.get("prompt") or {}
    return str(prompt.get("prompt") or "")


def random_roles(result: Mapping[str, Any]) -> list[str]:
    """The roles whose model answered with random weights."""
    models = result.get("models") or {}
    return sorted(role for role, entry in models.items() if isinstance(entry, Mapping) and entry.get("random_weights"))


def banner_html(result: Mapping[str, Any] | None, element_id: str = "vlp-random-banner") -> str:
    """The random-weights banner ('' when every model has real weights); `element_id`: one per tab."""
    if not result or not result.get("random_weights"):
        return ""
    roles = ", ".join(random_roles(result)) or "some models"
    return (
        f'<div id="{html.escape(element_id)}" class="vlp-banner" role="alert">'
        f"<strong>{html.escape(RANDOM_WEIGHTS_LABEL)}</strong><br>"
        f"Random-weight models answered ({html.escape(roles)}): a test stack such as local mode. Answers are "
        "placeholders, boxes and masks are noise; the plumbing is real.</div>"
    )


def assistant_text(result: Mapping[str, Any]) -> str:
    """The assistant's chat message for a result: the answer, or what the task produced; labelled when the models
    had random weights."""
    task = result.get("task")
    parts: list[str] = []
    answer = result.get("answer")
    if answer:
        parts.append(str(answer))
    if task == "segment":
        count = len(result.get("detections") or [])
        labels = sorted({str(d.get("label")) for d in result.get("detections") or []})
        found = f"Found {count} object(s): {', '.join(labels)}." if count else "Found nothing to segment."
        parts.append(found + (" See the overlay and the masks." if count else ""))
    elif task == "tag":
        best = ", ".join(f"{row[0]} ({row[1]:.2f})" for row in tag_rows(result)[:5] if row[1] is not None)
        parts.append(f"Tags: {best}." if best else "No tag above the threshold.")
    elif task == "prompt":
        text = prompt_text(result)
        parts.append(f"Prompt: {text}" if text else "No prompt came back.")
    if not parts:
        parts.append("(no answer)")
    if result.get("random_weights"):
        parts.append(f"_{RANDOM_WEIGHTS_LABEL}_")
    return "\n\n".join(parts)


def history_text(result: Mapping[str, Any]) -> str:
    """What the assistant's turn contributes to the next request's `history`: the answer itself (no labels), or a
    line saying what the task found (never blank: the API refuses blank turns)."""
    answer = result.get("answer")
    if answer and str(answer).strip():
        return str(answer)
    task = result.get("task")
    if task == "tag":
        return "Tags: " + (", ".join(str(row[0]) for row in tag_rows(result)[:5]) or "none")
    if task == "prompt" and prompt_text(result):
        return prompt_text(result)
    if task == "segment":
        labels = sorted({str(d.get("label")) for d in result.get("detections") or []})
        return f"Found {len(result.get('detections') or [])} object(s): {', '.join(labels) or 'none'}."
    return "(no answer)"


def user_text(text: str | None, transcript: str | None, audio_name: str | None) -> str:
    """The user's chat message: what was typed, and what was said (the transcript, once known)."""
    parts = [text.strip()] if text and text.strip() else []
    if audio_name:
        parts.append(
            f"(spoken) {transcript.strip()}" if transcript and transcript.strip() else f"(spoken: {audio_name})"
        )
    return "\n\n".join(parts) or "(describe the image)"


def transcript_of(result: Mapping[str, Any]) -> str | None:
    transcript = result.get("transcript")
    if isinstance(transcript, Mapping):
        return str(transcript.get("text") or "") or None
    return str(transcript) if transcript else None


def warnings_markdown(result: Mapping[str, Any] | None, extra: Iterable[str] = ()) -> str:
    """The service's warnings (and the page's own), as a Markdown list; '' when there are none."""
    items = [str(w) for w in (result or {}).get("warnings") or []] + [str(w) for w in extra]
    return "\n".join(f"- ⚠ {item}" for item in items)


def _run_lines(result: Mapping[str, Any]) -> list[str]:
    """The details every task shares, last in its panel: timings, the models that answered, the request id."""
    lines: list[str] = []
    timings = result.get("timings_ms") or {}
    if timings:
        lines.append("**timings** " + ", ".join(f"{step} {ms:.0f} ms" for step, ms in timings.items()))
    models = result.get("models") or {}
    if models:
        lines.append(
            "**models** "
            + ", ".join(
                f"{role}: {(entry or {}).get('model') or '?'}"
                + (" (random)" if (entry or {}).get("random_weights") else "")
                for role, entry in models.items()
            )
        )
    if result.get("request_id"):
        lines.append(f"**request id** `{result['request_id']}`")
    return lines


def details_markdown(result: Mapping[str, Any]) -> str:
    """Task, intent, keywords, transcript, timings and request id, for the details panel."""
    lines = [f"**task** `{result.get('task')}` (asked `{result.get('requested_task', 'auto')}`)"]
    intent = result.get("intent") or {}
    if intent.get("label"):
        lines.append(f"**intent** {intent['label']} ({_score(intent.get('score')) or 0:.2f})")
    keywords = [f"{k.get('keyword')} ({_score(k.get('score')) or 0:.2f})" for k in result.get("keywords") or []]
    if keywords:
        lines.append("**keywords** " + ", ".join(keywords))
    transcript = transcript_of(result)
    if transcript:
        language = (
            (result.get("transcript") or {}).get("language") if isinstance(result.get("transcript"), Mapping) else None
        )
        lines.append(f"**transcript** {transcript}" + (f" (`{language}`)" if language else ""))
    return "  \n".join([*lines, *_run_lines(result)])


def error_text(code: str, message: str, request_id: str | None) -> str:
    """An API error as the CLI prints it: `error CODE: message (request id …)`."""
    suffix = f" (request id {request_id})" if request_id else ""
    return f"error {code}: {message}{suffix}"


def mask_files(paths: Iterable[Path]) -> list[Path]:
    """The mask PNGs among downloaded files (mask-<i>.png), in detection order."""
    masks = [p for p in paths if re.fullmatch(r"mask-\d+\.png", p.name)]
    return sorted(masks, key=lambda p: int(p.stem.split("-")[1]))


def overlay_file(paths: Iterable[Path]) -> Path | None:
    """The overlay picture among downloaded files, if the service made one."""
    return next((p for p in paths if p.name == "overlay.png"), None)


def annotation_labels(result: Mapping[str, Any]) -> list[str]:
    """A label per detection for the mask view: `label score`, numbered when a label repeats."""
    detections = result.get("detections") or []
    names = [str(d.get("label", "")) for d in detections]
    out = []
    for index, detection in enumerate(detections):
        name = names[index]
        score = _score(detection.get("score"))
        label = f"{name} {score:.2f}" if score is not None else name
        out.append(f"{index}: {label}" if names.count(name) > 1 else label)
    return out


# ---- the Restyle tab (task restyle: docs/api.md; the presets and limits are the client's, vlp_client.restyle) ----
CUSTOM_STYLE = "custom"
STYLE_LABELS = {
    "starry_night": "Starry Night (Van Gogh)",
    "watercolor": "Watercolour",
    "pencil_sketch": "Pencil sketch",
    "studio_product": "Studio product shot",
    "anime": "Anime",
    "pixel_art": "Pixel art",
    "oil_painting": "Oil painting",
    "line_art": "Line art",
}
RESTYLE_BANNER_ID = "vlp-restyle-banner"


def style_choices() -> list[tuple[str, str]]:
    """The style dropdown: (label, value) for each of the API's presets, then the style typed on the page."""
    return [(STYLE_LABELS.get(name, name), name) for name in restyling.STYLES] + [
        ("Custom: the style typed below", CUSTOM_STYLE)
    ]


@dataclass(frozen=True)
class SliderSpec:
    """A slider over a numeric option: the API's range, the step, the label."""

    low: float
    high: float
    step: float
    label: str


# The Restyle tab's sliders, by option (each starts at RestyleControls' default: the API's).
RESTYLE_SLIDERS = {
    "strength": SliderSpec(
        restyling.MIN_STRENGTH, restyling.MAX_STRENGTH, 0.05, "Strength (how far from the original)"
    ),
    "steps": SliderSpec(restyling.MIN_STEPS, restyling.MAX_STEPS, 1, "Steps"),
    "guidance_scale": SliderSpec(restyling.MIN_GUIDANCE_SCALE, restyling.MAX_GUIDANCE_SCALE, 0.5, "Guidance scale"),
}


@dataclass(frozen=True)
class RestyleControls:
    """The Restyle tab's sliders and seed box, each with the API's default. `seed` as typed (a text box: Gradio's
    number box turns empty into 0); blank or None: the service draws one."""

    strength: float = restyling.DEFAULT_STRENGTH
    steps: float = restyling.DEFAULT_STEPS
    guidance_scale: float = restyling.DEFAULT_GUIDANCE_SCALE
    seed: str | float | None = None


def seed_value(seed: str | float | None) -> int | None:
    """The seed box's value: None when blank, else a whole number 0..2**32-1 (ValueError saying what is wrong)."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return None
    text = seed.strip() if isinstance(seed, str) else f"{seed:g}"
    try:
        number = int(text) if isinstance(seed, str) else int(seed)
    except ValueError:
        number = None
    if number is None or (not isinstance(seed, str) and number != seed) or not 0 <= number <= restyling.MAX_SEED:
        raise ValueError(
            f"The seed {text!r} is not a whole number from 0 to {restyling.MAX_SEED} (leave it empty for a random one)."
        )
    return number


def _blank(text: str | None) -> bool:
    return not (text and text.strip())


def check_restyle(
    style: str | None,
    style_text: str | None,
    description: str | None,
    negative_prompt: str | None,
    seed: str | float | None,
) -> str | None:
    """What is wrong with a restyle request before it is sent (the API would refuse it), or None."""
    if style != CUSTOM_STYLE and style not in restyling.STYLES:
        return f"Unknown style {style!r}: choose one of the list."
    if style == CUSTOM_STYLE and _blank(style_text):
        return "Type the style you want (e.g. “as a 1950s travel poster”), or choose one of the presets."
    if style != CUSTOM_STYLE and not _blank(style_text):
        return f"A style of your own is typed: choose “{style_choices()[-1][0]}” to use it, or clear it."
    for name, text, limit in (
        ("The style", style_text, restyling.MAX_STYLE_PROMPT_CHARS),
        ("The description", description, restyling.MAX_PROMPT_CHARS),
        ("The negative prompt", negative_prompt, restyling.MAX_NEGATIVE_PROMPT_CHARS),
    ):
        if text and len(text.strip()) > limit:
            return f"{name} is {len(text.strip())} characters long: at most {limit}."
    try:
        seed_value(seed)
    except ValueError as error:
        return str(error)
    return None


def restyle_fields(style: str | None, style_text: str | None, description: str | None) -> dict[str, str]:
    """The request's top-level restyle fields: `style` (a preset) or `style_prompt` (custom), and `prompt` when a
    description is typed (the service then skips its interrogation)."""
    fields_: dict[str, str] = (
        {"style_prompt": (style_text or "").strip()} if style == CUSTOM_STYLE else {"style": str(style)}
    )
    if not _blank(description):
        fields_["prompt"] = (description or "").strip()
    return fields_


def restyle_options(controls: RestyleControls, negative_prompt: str | None = None) -> dict[str, float | int | str]:
    """`options` for a restyle: the sliders moved away from the API's defaults (steps a whole number, fractions to
    3 decimals), the seed when one is given, the negative prompt when typed."""
    options: dict[str, float | int | str] = {}
    strength = round(float(controls.strength), 3)
    if strength != restyling.DEFAULT_STRENGTH:
        options["strength"] = strength
    steps = round(controls.steps)
    if steps != restyling.DEFAULT_STEPS:
        options["steps"] = steps
    guidance = round(float(controls.guidance_scale), 3)
    if guidance != restyling.DEFAULT_GUIDANCE_SCALE:
        options["guidance_scale"] = guidance
    seed = seed_value(controls.seed)
    if seed is not None:
        options["seed"] = seed
    if not _blank(negative_prompt):
        options["negative_prompt"] = (negative_prompt or "").strip()
    return options


def restyle_section(result: Mapping[str, Any]) -> Mapping[str, Any]:
    """The result's `restyle` object ({} when there is none)."""
    section = result.get("restyle")
    return section if isinstance(section, Mapping) else {}


def restyle_details_markdown(result: Mapping[str, Any]) -> str:
    """Style, description, picture size and seed, truncation, timings, models and request id."""
    section = restyle_section(result)
    picture = section.get("restyled") if isinstance(section.get("restyled"), Mapping) else {}
    lines = [f"**style** `{section.get('style')}`" if section.get("style") else "**style** your own"]
    if section.get("source_prompt"):
        lines.append(f"**description** {section['source_prompt']}")
    if picture:
        lines.append(f"**restyled** {picture.get('width')}x{picture.get('height')}, seed `{picture.get('seed')}`")
    if section.get("truncated"):
        lines.append("**prompt cut** to the text encoder's 77-token window")
    return "  \n".join([*lines, *_run_lines(result)])


def restyled_file(paths: Iterable[Path]) -> Path | None:
    """The restyled picture among downloaded files (restyled.png)."""
    return next((p for p in paths if p.name == restyling.OUTPUT_FILE), None)
