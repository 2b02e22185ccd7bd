"""The intent and keywords steps (one intent_keywords call each, in parallel), and the routing decision.

The intent step returns ``route``: the task the pipeline runs after the Understand parallel state. A forced
task routes to itself; ``auto`` routes on the intent label, falling back to ``describe`` (with a warning) when
the routed task cannot run (no labels for ``tag``, model not deployed).

Both read the newest turn only (the request's text and the audio's transcript, in English with
``options.translate``), never a conversation's history. Keywords become segment's detection prompts, so the words
that only say what to do ("outline every dog in this picture": outline, every, picture) must not be keywords:
they go to the model as KeyBERT stop words (``stop_words``), and any that still come back are cut out of the
keyphrases here (a model package that ignores the field, an n-gram that straddles one).
"""

from __future__ import annotations

import time
from typing import Any

from vlp.api.models import MAX_TEXT_CHARS
from vlp.errors import CallerError
from vlp.inference import djl
from vlp.pipeline.context import Context, endpoint, is_random_model, output, parse_context, skipped
from vlp.settings import PipelineSettings

ROUTE_ROLES = {"segment": "grounded_sam", "tag": "clip_tagging", "prompt": "clip_interrogator", "describe": "vlm"}

# Words that say what to do with the image, never what to look for in it (lowercase; KeyBERT lowercases the text).
# The intent_keywords package carries the same list as its default (tests/models/intent_keywords checks they agree).
INSTRUCTION_WORDS: tuple[str, ...] = tuple(
    sorted(
        {
            *("segment", "segments", "segmented", "segmenting", "segmentation"),
            *("mask", "masks", "masked", "masking"),
            *("outline", "outlines", "outlined", "outlining"),
            *("highlight", "highlights", "highlighted", "highlighting"),
            *("cut", "cuts", "cutting", "cutout"),
            *("find", "finds", "finding", "locate", "locating", "detect", "detecting", "detection"),
            *("show", "shows", "showing", "identify", "point", "select", "isolate", "extract"),
            *("draw", "trace", "crop", "separate"),
            *("image", "images", "picture", "pictures", "photo", "photos", "photograph", "pic", "pics"),
            *("snapshot", "screenshot"),
            *("every", "each", "please", "thing", "things"),
        }
    )
)
_INSTRUCTION_SET = frozenset(INSTRUCTION_WORDS)


def object_keywords(keywords: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keyphrases with the instruction words taken out; phrases left empty dropped, duplicates merged (the
    first, best-scored, kept): "outline dog" -> "dog"."""
    out: dict[str, dict[str, Any]] = {}
    for item in keywords:
        words = [word for word in item["keyword"].split() if word.lower() not in _INSTRUCTION_SET]
        phrase = " ".join(words)
        if phrase and phrase not in out:
            out[phrase] = {"keyword": phrase, "score": item["score"]}
    return list(out.values())


def route_for(label: str, context: Context, settings: PipelineSettings) -> tuple[str, list[str]]:
    """The task an ``auto`` request runs for an intent label, and warnings for fallbacks."""
    route = label if label in ("segment", "tag", "prompt") else "describe"
    warnings: list[str] = []
    if route == "tag" and not context.labels:
        warnings.append("The text asks for tags but the request has no labels: described the image instead.")
        route = "describe"
    if route != "describe" and not settings.endpoint(ROUTE_ROLES[route]):
        warnings.append(
            f"The text asks for '{route}', but the {ROUTE_ROLES[route]} model is not deployed here: "
            "described the image instead."
        )
        route = "describe"
    return route, warnings


def run_intent(event: Any, *, sagemaker: Any, settings: PipelineSettings) -> dict[str, Any]:
    started = time.perf_counter()
    context = parse_context(event)
    if context.task != "auto":
        return skipped(started, "task given by the caller", route=context.task, intent=None)
    text = context.full_text()
    if not text:
        return skipped(started, "no text", route="describe", intent=None)
    target = endpoint(settings, "intent_keywords")
    if target is None:
        return skipped(
            started,
            "intent model not deployed",
            route="describe",
            intent=None,
            warnings=["The intent model is not deployed here: described the image."],
        )
    body, invocation = djl.call(sagemaker, target, djl.intent_request(text[:MAX_TEXT_CHARS]), step="intent")
    intent = djl.parse_intent(body)
    route, warnings = route_for(intent["label"], context, settings)
    if len(text) > MAX_TEXT_CHARS:
        warnings.append(f"Only the first {MAX_TEXT_CHARS} characters of the text were classified.")
    return output(
        started,
        intent=intent,
        route=route,
        warnings=warnings,
        model=body.get("model"),
        random_weights=is_random_model(body.get("model"), flag=body.get("random_weights")),
        model_ms=round(invocation.elapsed_ms, 1),
    )


def run_keywords(event: Any, *, sagemaker: Any, settings: PipelineSettings) -> dict[str, Any]:
    started = time.perf_counter()
    context = parse_context(event)
    if context.task in ("describe", "tag", "prompt"):
        return skipped(started, "not needed for the task", keywords=[])
    text = context.full_text()
    if not text:
        return skipped(started, "no text", keywords=[])
    target = endpoint(settings, "intent_keywords")
    if target is None:
        if context.task == "segment" and not context.labels:
            raise CallerError(
                "Task 'segment' without labels needs the intent_keywords model, which this environment does not "
                "deploy.",
                code="TASK_NOT_AVAILABLE",
            )
        return skipped(started, "keyword model not deployed", keywords=[])
    request = djl.keywords_request(
        text[:MAX_TEXT_CHARS], top_n=context.options.keywords_top_n, stop_words=INSTRUCTION_WORDS
    )
    body, invocation = djl.call(sagemaker, target, request, step="keywords")
    return output(
        started,
        keywords=object_keywords(djl.parse_keywords(body)),
        model=body.get("keyword_model") or body.get("model"),
        random_weights=is_random_model(body.get("keyword_model") or body.get("model"), flag=body.get("random_weights")),
        model_ms=round(invocation.elapsed_ms, 1),
    )
