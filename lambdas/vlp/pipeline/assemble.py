"""The assemble step: the final response (the execution's output), a mapping of the typed step results.

The response shape is the ``AnalyzeResult`` schema of openapi/vlp-api.json (vlp.api.responses); the API
handlers add presigned ``url`` fields next to the mask keys when they return it.
"""

from __future__ import annotations

import time
from typing import Any

from vlp.errors import CallerError
from vlp.pipeline.helpers import elapsed_ms, parse_context
from vlp.pipeline.models import (
    Analysis,
    Context,
    ImageRef,
    PromptResult,
    RestyleResult,
    SegmentResult,
    StepResult,
    TagResult,
    TranscribeResult,
)
from vlp.steps import BY_NAME, Route


def _final_route(analysis: Analysis) -> Route:
    """The route Understand chose (vlp.steps.route_for), unless segment found nothing to look for."""
    if isinstance(analysis.result, SegmentResult) and analysis.result.route == Route.DESCRIBE.value:
        return Route.DESCRIBE  # `auto`, nothing to segment: the VLM's answer stands
    return analysis.understand.route


def _results(context: Context, analysis: Analysis) -> dict[str, StepResult]:
    """Every step result of this execution by step name (vlp.steps), the ones that did not run included."""
    results: dict[str, StepResult | None] = {
        "transcribe": context.transcribe,
        "understand": analysis.understand,
        "plan": analysis.answer.plan,
        "answer": analysis.answer,
        analysis.result.step: analysis.result,
        # restyle carries the Interrogate state's output (branch a's result keeps only the last step's)
        "interrogate": analysis.result.interrogation if isinstance(analysis.result, RestyleResult) else None,
    }
    return {step: result for step, result in results.items() if result is not None and step in BY_NAME}


def _models(results: dict[str, StepResult]) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for step, result in results.items():
        role = BY_NAME[step].role
        if role is not None and result.ran:
            entry = models.setdefault(role, {"model": None, "random_weights": False})
            entry["model"] = entry["model"] or result.model
            entry["random_weights"] = entry["random_weights"] or result.random_weights
    return models


def _transcript(result: TranscribeResult | None) -> dict[str, Any] | None:
    if result is None or not result.ran:
        return None
    return {
        "text": result.text,
        "language": result.language,
        "duration": result.duration,
        "translated": result.translated,
    }


def _image(image: ImageRef) -> dict[str, Any]:
    return {
        "width": image.original_width,
        "height": image.original_height,
        "normalised_width": image.width,
        "normalised_height": image.height,
        "format": image.format,
        "key": image.key,
    }


def _routed(route: Route, result: StepResult) -> dict[str, Any]:
    """The response fields of the routed task's result (empty ones for the other tasks)."""
    segment = result if isinstance(result, SegmentResult) and route is Route.SEGMENT else None
    return {
        "detections": [d.model_dump(exclude_none=True) for d in segment.detections] if segment else [],
        "masks_rle": segment.masks_rle.model_dump() if segment and segment.masks_rle else None,
        "overlay": segment.overlay.model_dump() if segment and segment.overlay else None,
        "tags": [tag.model_dump() for tag in result.tags] if isinstance(result, TagResult) else None,
        "prompt": result.model_dump(include={"prompt", "caption", "mode", "flavors"})
        if isinstance(result, PromptResult)
        else None,
        "restyle": _restyle(result) if isinstance(result, RestyleResult) else None,
    }


def _restyle(result: RestyleResult) -> dict[str, Any]:
    """The restyle section: what SDXL was given and the PNG it made (the API adds its presigned `url`)."""
    return result.model_dump(
        mode="json", include={"style", "prompt", "negative_prompt", "source_prompt", "truncated", "restyled"}
    )


def run(event: Any, *, now_ms: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    context = parse_context(event)
    if context.analysis is None:
        raise ValueError("the assemble step runs after the Analyze parallel state ($.analysis)")
    analysis, route = context.analysis, _final_route(context.analysis)
    answer, understand = analysis.answer, analysis.understand
    if route is Route.DESCRIBE and answer.answer is None and answer.reason == "vlm not deployed":
        raise CallerError(
            "Describing the image needs the vlm model, which this environment does not deploy.",
            code="TASK_NOT_AVAILABLE",
        )
    results = _results(context, analysis)
    models = _models(results)
    timings = {s: r.elapsed_ms for s, r in results.items() if r.ran and r.elapsed_ms is not None}
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return {
        "request_id": context.request_id,
        "task": route.value,
        "requested_task": context.task,
        "answer": answer.answer,
        "plan": (answer.plan.steps or None) if answer.plan is not None else None,
        "intent": understand.intent.model_dump() if understand.intent is not None else None,
        "keywords": [keyword.model_dump() for keyword in understand.keywords],
        "transcript": _transcript(context.transcribe),
        "image": _image(context.image),
        **_routed(route, analysis.result),
        "models": models,
        "random_weights": any(entry["random_weights"] for entry in models.values()),
        "timings_ms": {
            **context.timings_ms,
            **timings,
            "assemble": elapsed_ms(started),
            "total": float(max(0, now - context.received_at_ms)),
        },
        "warnings": list(dict.fromkeys([*context.warnings, *(w for r in results.values() for w in r.warnings)])),
    }
