"""Requests to and responses from the DJL Python-engine packages (docs/model-contracts.md).

Builders return the JSON body; parsers check the shape they rely on and raise ModelFailedError otherwise
(a model that answers 200 with a body we cannot read is a model failure, not the caller's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vlp.errors import ModelFailedError, model_error
from vlp.inference.sagemaker import Endpoint, Invocation, invoke, parse_json

# The intents the pipeline routes on; descriptions are the NLI hypotheses (contract: `intents`).
INTENTS = {
    "describe": "describe or answer a question about the image",
    "segment": "find, locate or outline objects",
    "tag": "tag or categorize the product",
    "prompt": "write an image generation prompt",
}


def call(client: Any, endpoint: Endpoint, request: dict[str, Any], *, step: str) -> tuple[Any, Invocation]:
    body = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    invocation = invoke(client, endpoint, step=step, body=body)
    return parse_json(invocation, step=step, role=endpoint.role), invocation


def _bad(step: str, role: str, what: str) -> ModelFailedError:
    return model_error(ModelFailedError, step, f"The {role} model returned an unexpected response ({what}).")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---- intent_keywords ----


def intent_request(text: str, intents: dict[str, str] | None = None) -> dict[str, Any]:
    return {"text": text, "tasks": ["intent"], "intents": dict(intents or INTENTS)}


def keywords_request(
    text: str, *, top_n: int = 5, ngram_range: tuple[int, int] = (1, 2), stop_words: Sequence[str] | None = None
) -> dict[str, Any]:
    """``stop_words``: words never part of a keyphrase, on top of the English stop words (contract field)."""
    request: dict[str, Any] = {
        "text": text,
        "tasks": ["keywords"],
        "top_n": top_n,
        "keyphrase_ngram_range": list(ngram_range),
    }
    if stop_words is not None:
        request["stop_words"] = list(stop_words)
    return request


def understand_request(
    text: str, tasks: Sequence[str], *, top_n: int = 5, stop_words: Sequence[str] | None = None
) -> dict[str, Any]:
    """One request for the intent and/or the keywords of a text (the package answers both tasks in one call)."""
    request: dict[str, Any] = {"text": text, "tasks": list(tasks)}
    if "intent" in tasks:
        request.update(intent_request(text))
    if "keywords" in tasks:
        request.update(keywords_request(text, top_n=top_n, stop_words=stop_words))
    request["tasks"] = list(tasks)
    return request


def parse_intent(body: Any, *, step: str = "intent", role: str = "intent_keywords") -> dict[str, Any]:
    intent = body.get("intent") if isinstance(body, dict) else None
    if not isinstance(intent, dict) or not isinstance(intent.get("label"), str) or not _number(intent.get("score")):
        raise _bad(step, role, "no intent")
    scores = intent.get("scores")
    if not isinstance(scores, dict):
        scores = {}
    return {
        "label": intent["label"],
        "score": float(intent["score"]),
        "scores": {str(k): float(v) for k, v in scores.items() if _number(v)},
    }


def _scored(body: Any, key: str, name: str, *, step: str, role: str) -> list[dict[str, Any]]:
    """``body[key]``: a list of ``{name: str, "score": number}`` (keywords, tags), else a FAILED model error."""
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise _bad(step, role, f"no {key}")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(name), str) or not _number(item.get("score")):
            raise _bad(step, role, f"malformed {key.removesuffix('s')}")
        out.append({name: item[name], "score": float(item["score"])})
    return out


def parse_keywords(body: Any, *, step: str = "keywords", role: str = "intent_keywords") -> list[dict[str, Any]]:
    return _scored(body, "keywords", "keyword", step=step, role=role)


# ---- grounded_sam ----


def grounded_sam_request(
    image_b64: str,
    prompts: list[str],
    *,
    box_threshold: float = 0.35,
    text_threshold: float = 0.25,
    max_detections: int = 20,
    masks: str = "rle",
) -> dict[str, Any]:
    return {
        "image": image_b64,
        "prompts": list(prompts),
        "box_threshold": box_threshold,
        "text_threshold": text_threshold,
        "masks": masks,
        "max_detections": max_detections,
    }


def parse_grounded_sam(body: Any, *, step: str = "segment", role: str = "grounded_sam") -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("detections"), list):
        raise _bad(step, role, "no detections")
    width, height = body.get("width"), body.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise _bad(step, role, "no image size")
    detections = []
    for item in body["detections"]:
        box = item.get("box") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("label"), str)
            or not _number(item.get("score"))
            or not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box))
        ):
            raise _bad(step, role, "malformed detection")
        mask = item.get("mask")
        rle = mask.get("rle") if isinstance(mask, dict) else None
        if rle is not None and not (
            isinstance(rle, dict)
            and isinstance(rle.get("counts"), str)
            and isinstance(rle.get("size"), list)
            and len(rle["size"]) == 2
        ):
            raise _bad(step, role, "malformed mask")
        detections.append(
            {
                "label": item["label"],
                "score": float(item["score"]),
                "box": [float(v) for v in box],
                "rle": rle,
                "area": mask.get("area") if isinstance(mask, dict) else None,
            }
        )
    return {
        "width": width,
        "height": height,
        "detections": detections,
        "model": body.get("model"),
        "sam_model": body.get("sam_model"),
    }


# ---- clip_tagging ----


def clip_tagging_request(
    image_b64: str,
    labels: list[str],
    *,
    mode: str = "softmax",
    top_k: int = 5,
    threshold: float = 0.0,
    prompt_template: str | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "image": image_b64,
        "labels": list(labels),
        "mode": mode,
        "top_k": max(1, min(top_k, len(labels))),
        "threshold": threshold,
    }
    if prompt_template:
        request["prompt_template"] = prompt_template
    return request


def parse_tags(body: Any, *, step: str = "tag", role: str = "clip_tagging") -> dict[str, Any]:
    out = _scored(body, "tags", "label", step=step, role=role)
    out.sort(key=lambda tag: tag["score"], reverse=True)
    return {"tags": out, "mode": body.get("mode"), "model": body.get("model")}


# ---- clip_interrogator ----


def interrogator_request(image_b64: str, *, mode: str = "fast") -> dict[str, Any]:
    return {"image": image_b64, "mode": mode}


def parse_interrogator(body: Any, *, step: str = "prompt", role: str = "clip_interrogator") -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        raise _bad(step, role, "no prompt")
    flavors = body.get("flavors")
    if not isinstance(flavors, list):
        flavors = []
    caption = body.get("caption") if isinstance(body.get("caption"), str) else None
    return {
        "prompt": body["prompt"],
        "caption": caption,
        "mode": body.get("mode"),
        "flavors": [f for f in flavors if isinstance(f, str)][:64],
        "model": body.get("model"),
        "caption_model": body.get("caption_model"),
    }


# ---- restyle (SDXL img2img: S3 references in, the PNG written by the container) ----


def restyle_request(
    *,
    bucket: str,
    image_key: str,
    output_key: str,
    prompt: str,
    negative_prompt: str | None,
    strength: float,
    steps: int,
    guidance_scale: float,
    seed: int | None,
) -> dict[str, Any]:
    return {
        "image": {"bucket": bucket, "key": image_key},
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "strength": strength,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "seed": seed,
        "output": {"bucket": bucket, "key": output_key},
    }


def parse_restyle(body: Any, *, output_key: str, step: str = "restyle", role: str = "restyle") -> dict[str, Any]:
    """The restyle container's answer: the key it wrote (must be the one asked for), the size and the seed."""
    if not isinstance(body, dict) or body.get("key") != output_key:
        raise _bad(step, role, "not the requested output key")
    sizes = [body.get("width"), body.get("height"), body.get("seed")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in sizes) or not all(sizes[:2]):
        raise _bad(step, role, "no image size or seed")
    return {
        "key": output_key,
        "width": body["width"],
        "height": body["height"],
        "seed": body["seed"],
        "truncated": body.get("truncated") is True,
        "model": body.get("model") if isinstance(body.get("model"), str) else None,
        "random_weights": body.get("random_weights") is True,
    }
