"""The understand step: intent and keywords in ONE intent_keywords call, and the route (vlp.steps.route_for).

It returns ``route``: the task the pipeline runs next in its branch of the Analyze parallel state (the Route
Choice reads it). It asks the model only what the request needs: the intent for ``auto``, the keywords for
``auto`` and ``segment`` (segment's detection prompts when there are no labels); a forced task routes to itself.
Errors keep the codes callers know: INTENT_* when the intent was asked, else KEYWORDS_*.

It reads the newest turn only (the request's text and the audio's transcript, in English with
``options.translate``), never a conversation's history. Keywords become segment's detection prompts, so the words
that only say what to do ("outline every dog in this picture": outline, every, picture) must not be keywords:
they go to the model as KeyBERT stop words (``stop_words``), and any that still come back are cut out of the
keyphrases here (a model package that ignores the field, an n-gram that straddles one).
"""

from __future__ import annotations

import time
from typing import Any

from vlp.errors import CallerError
from vlp.inference import djl
from vlp.pipeline.helpers import elapsed_ms, endpoint, is_random_model, parse_context
from vlp.pipeline.models import Intent, Keyword, UnderstandResult
from vlp.requests import MAX_TEXT_CHARS
from vlp.settings import PipelineSettings
from vlp.steps import route_for

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


def object_keywords(keywords: list[dict[str, Any]]) -> list[Keyword]:
    """Keyphrases with the instruction words taken out; phrases left empty dropped, duplicates merged (the
    first, best-scored, kept): "outline dog" -> "dog"."""
    out: dict[str, Keyword] = {}
    for item in keywords:
        words = [word for word in item["keyword"].split() if word.lower() not in _INSTRUCTION_SET]
        phrase = " ".join(words)
        if phrase and phrase not in out:
            out[phrase] = Keyword(keyword=phrase, score=item["score"])
    return list(out.values())


def _tasks(task: str) -> list[str]:
    """What the model is asked: the intent only to route ``auto``; keywords where segment may use them."""
    return [name for name, needed in (("intent", task == "auto"), ("keywords", task in ("auto", "segment"))) if needed]


def run(event: Any, *, sagemaker: Any, settings: PipelineSettings) -> UnderstandResult:
    started = time.perf_counter()
    context = parse_context(event)
    has_labels = bool(context.labels)

    def routed(intent: Intent | None = None, **fields: Any) -> UnderstandResult:
        route, fallbacks = route_for(
            context.task,
            intent=intent.label if intent else None,
            has_labels=has_labels,
            deployed=lambda role: bool(settings.endpoint(role)),
        )
        notes = [*fallbacks, *fields.pop("warnings", [])]
        return UnderstandResult(route=route, intent=intent, warnings=notes, elapsed_ms=elapsed_ms(started), **fields)

    tasks, text = _tasks(context.task), context.full_text()
    if not tasks:
        return routed(skipped=True, reason="task given by the caller")
    if not text:
        return routed(skipped=True, reason="no text")
    target = endpoint(settings, "intent_keywords")
    if target is None:
        if context.task == "segment" and not has_labels:
            raise CallerError(
                "Task 'segment' without labels needs the intent_keywords model, which this environment does not "
                "deploy.",
                code="TASK_NOT_AVAILABLE",
            )
        missing = ["The intent model is not deployed here: described the image."] if "intent" in tasks else []
        return routed(skipped=True, reason="intent_keywords model not deployed", warnings=missing)
    request = djl.understand_request(
        text[:MAX_TEXT_CHARS], tasks, top_n=context.options.keywords_top_n, stop_words=INSTRUCTION_WORDS
    )
    step = tasks[0]  # the error codes callers know: INTENT_* (auto) or KEYWORDS_* (segment)
    body, invocation = djl.call(sagemaker, target, request, step=step)
    intent = Intent(**djl.parse_intent(body, step=step)) if "intent" in tasks else None
    keywords = object_keywords(djl.parse_keywords(body, step=step)) if "keywords" in tasks else []
    warnings: list[str] = []
    if len(text) > MAX_TEXT_CHARS:
        warnings.append(f"Only the first {MAX_TEXT_CHARS} characters of the text were classified.")
    keyword_model = body.get("keyword_model") if "keywords" in tasks else None
    return routed(
        intent,
        keywords=keywords,
        warnings=warnings,
        model=body.get("model") if intent is not None else keyword_model or body.get("model"),
        keyword_model=keyword_model,
        # the models that answered: the NLI model for the intent, the keyword model for the keywords
        random_weights=any(
            is_random_model(body.get(key), flag=body.get("random_weights"))
            for task, key in (("intent", "model"), ("keywords", "keyword_model"))
            if task in tasks
        ),
        model_ms=round(invocation.elapsed_ms, 1),
    )
