"""The assemble step: the final response (the execution's output), from the context the states built.

The response shape is the ``AnalyzeResult`` schema of openapi/vlp-api.json (vlp.api.responses); the API
handlers add presigned ``url`` fields next to the mask keys when they return it.
"""

from __future__ import annotations

import time
from typing import Any

from vlp.errors import CallerError
from vlp.pipeline.context import Context, parse_context

# step -> (where its output sits in the context, the model role it ran)
_STEP_ROLES = {
    "asr": "asr",
    "intent": "intent_keywords",
    "keywords": "intent_keywords",
    "plan": "llm",
    "vlm": "vlm",
    "segment": "grounded_sam",
    "tag": "clip_tagging",
    "prompt": "clip_interrogator",
}


def _ran(step_output: Any) -> bool:
    return isinstance(step_output, dict) and bool(step_output) and not step_output.get("skipped")


def _step_outputs(context: Context, route: str) -> dict[str, dict[str, Any]]:
    answer = context.understood("answer")
    plan = answer.get("plan") if isinstance(answer.get("plan"), dict) else context.plan
    outputs = {
        "asr": context.asr,
        "intent": context.understood("intent"),
        "keywords": context.understood("keywords"),
        "plan": plan,
        "vlm": answer,
    }
    if route in ("segment", "tag", "prompt"):
        outputs[route] = context.result
    elif isinstance(context.result, dict) and context.result.get("route") == "describe":
        outputs["segment"] = context.result  # an `auto` segment with nothing to look for: its warning
    return {step: value for step, value in outputs.items() if isinstance(value, dict)}


def resolve_route(context: Context) -> str:
    route = context.understood("intent").get("route")
    if route == "segment" and isinstance(context.result, dict) and context.result.get("route") == "describe":
        return "describe"  # `auto`, nothing to segment (vision.run_segment): the VLM's answer stands
    if route in ("describe", "segment", "tag", "prompt"):
        return route
    return context.task if context.task != "auto" else "describe"


def run(event: Any, *, now_ms: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    context = parse_context(event)
    route = resolve_route(context)
    answer = context.understood("answer")
    if route == "describe" and not answer.get("answer") and answer.get("reason") == "vlm not deployed":
        raise CallerError(
            "Describing the image needs the vlm model, which this environment does not deploy.",
            code="TASK_NOT_AVAILABLE",
        )
    outputs = _step_outputs(context, route)
    result = context.result if isinstance(context.result, dict) and route in ("segment", "tag", "prompt") else {}

    warnings: list[str] = list(context.warnings)
    for step_output in outputs.values():
        for warning in step_output.get("warnings") or []:
            if isinstance(warning, str) and warning not in warnings:
                warnings.append(warning)

    models: dict[str, dict[str, Any]] = {}
    for step, step_output in outputs.items():
        if not _ran(step_output):
            continue
        role = _STEP_ROLES[step]
        entry = models.setdefault(role, {"model": None, "random_weights": False})
        for key in ("model", "keyword_model"):
            if isinstance(step_output.get(key), str) and entry["model"] is None:
                entry["model"] = step_output[key]
        entry["random_weights"] = entry["random_weights"] or step_output.get("random_weights") is True

    timings: dict[str, float] = dict(context.timings_ms)  # validated numbers (Context)
    for step, step_output in outputs.items():
        if _ran(step_output) and isinstance(step_output.get("elapsed_ms"), (int, float)):
            timings[step] = step_output["elapsed_ms"]
    timings["assemble"] = round((time.perf_counter() - started) * 1000, 1)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    timings["total"] = float(max(0, now - context.received_at_ms))

    asr = context.asr if _ran(context.asr) else None
    intent_output = context.understood("intent")
    keywords_output = context.understood("keywords")
    plan_output = outputs.get("plan") or {}
    image = context.image
    return {
        "request_id": context.request_id,
        "task": route,
        "requested_task": context.task,
        "answer": answer.get("answer") if isinstance(answer.get("answer"), str) else None,
        "plan": [s for s in plan_output.get("steps") or [] if isinstance(s, str)] or None,
        "intent": intent_output.get("intent") if isinstance(intent_output.get("intent"), dict) else None,
        "keywords": [k for k in keywords_output.get("keywords") or [] if isinstance(k, dict)],
        "transcript": (
            {
                "text": asr.get("text", ""),
                "language": asr.get("language"),
                "duration": asr.get("duration"),
                "translated": asr.get("translated") is True,
            }
            if asr
            else None
        ),
        "image": {
            "width": image.original_width,
            "height": image.original_height,
            "normalised_width": image.width,
            "normalised_height": image.height,
            "format": image.format,
            "key": image.key,
        },
        "detections": list(result.get("detections") or []) if route == "segment" else [],
        "masks_rle": result.get("masks_rle") if route == "segment" else None,
        "overlay": result.get("overlay") if route == "segment" else None,
        "tags": list(result.get("tags") or []) if route == "tag" else None,
        "prompt": (
            {
                "prompt": result.get("prompt"),
                "caption": result.get("caption"),
                "mode": result.get("mode"),
                "flavors": list(result.get("flavors") or []),
            }
            if route == "prompt"
            else None
        ),
        "models": models,
        "random_weights": any(entry["random_weights"] for entry in models.values()),
        "timings_ms": timings,
        "warnings": warnings,
    }
