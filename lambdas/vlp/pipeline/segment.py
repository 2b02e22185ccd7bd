"""The segment step (Grounding DINO + SAM): detections and masks.

It sends the normalised image (long side <= 2048) as base64 (like tag and prompt: helpers.image_b64), maps the boxes
back to pixels of the original (upright) image, writes every mask as a PNG of the original size under
results/<request id>/, and (``options.overlay``, on by default) one overlay picture, ``overlay.png``, drawn in the
same pass over the masks (vlp.pipeline.overlay); none when nothing was detected. It keeps the COCO RLE (in the
normalised image's frame, its ``size`` says so) inline while the total stays under ``RLE_INLINE_BUDGET`` bytes;
above it, all RLE goes to one S3 JSON object and the state keeps its key.
"""

from __future__ import annotations

import json
import time
from typing import Any

from vlp.errors import CallerError, ModelFailedError, model_error
from vlp.inference import djl
from vlp.keys import result_key
from vlp.pipeline import storage
from vlp.pipeline.helpers import elapsed_ms, image_b64, is_random_model, parse_context, require_endpoint
from vlp.pipeline.models import Context, Detection, MasksRle, S3Object, SegmentResult
from vlp.settings import PipelineSettings

RLE_INLINE_BUDGET = 48 * 1024  # bytes of RLE JSON kept in the state (states are limited to 256 KB)
MAX_PROMPTS = 32
OVERLAY_NAME = "overlay.png"


def _overlay(s3: Any, context: Context, settings: PipelineSettings) -> Any:
    """The overlay canvas: the original image (what the caller sent, upright, RGB) at its full size."""
    from vlp.pipeline.imaging import upright_rgb
    from vlp.pipeline.overlay import Overlay

    data = storage.read(s3, settings.requests_bucket, context.image.source_key, max_bytes=settings.max_image_bytes)
    base = upright_rgb(data, max_pixels=settings.max_image_pixels)
    size = (context.image.original_width, context.image.original_height)
    if base.size != size:  # not expected: validate measured the same file
        from PIL import Image

        base = base.resize(size, Image.Resampling.LANCZOS)
    return Overlay(base)


def segment_prompts(context: Context) -> tuple[list[str], list[str]]:
    """The phrases to detect: the labels when given, else the keywords of the text. Plus warnings."""
    warnings: list[str] = []
    if context.labels:
        prompts = list(dict.fromkeys(context.labels))
    else:
        keywords = context.understand.keywords if context.understand is not None else []
        prompts = list(dict.fromkeys(k.keyword for k in keywords if k.keyword))
    if len(prompts) > MAX_PROMPTS:
        warnings.append(f"Only the first {MAX_PROMPTS} phrases were searched for.")
        prompts = prompts[:MAX_PROMPTS]
    if not prompts:
        raise CallerError(
            "Nothing to segment: send labels, or a text that names the objects to find.", code="NO_SEGMENT_PROMPTS"
        )
    return prompts, warnings


def scale_box(box: list[float], *, sx: float, sy: float, width: int, height: int) -> list[float]:
    """A box in the normalised image -> the same box in pixels of the original image, clipped to it."""
    x0, y0, x1, y1 = box
    scaled = [
        min(max(x0 * sx, 0.0), float(width)),
        min(max(y0 * sy, 0.0), float(height)),
        min(max(x1 * sx, 0.0), float(width)),
        min(max(y1 * sy, 0.0), float(height)),
    ]
    return [round(value, 1) for value in scaled]


def run(
    event: Any, *, s3: Any, sagemaker: Any, settings: PipelineSettings, rle_budget: int = RLE_INLINE_BUDGET
) -> SegmentResult:
    started = time.perf_counter()
    context = parse_context(event)
    target = require_endpoint(settings, "grounded_sam", what="Task 'segment'")
    try:
        prompts, warnings = segment_prompts(context)
    except CallerError as error:
        if context.task != "auto" or error.code != "NO_SEGMENT_PROMPTS":
            raise
        # `auto` routed here on the intent, but the text names nothing to look for (only instruction words, e.g.
        # "highlight this picture"): the VLM's answer stands, as for the other fallbacks to describe
        return SegmentResult(
            skipped=True,
            reason="nothing to segment",
            route="describe",
            warnings=["The text asks to segment but names nothing to look for: described the image instead."],
            elapsed_ms=elapsed_ms(started),
        )
    options = context.options
    request = djl.grounded_sam_request(
        image_b64(s3, context, settings),
        prompts,
        box_threshold=options.box_threshold,
        text_threshold=options.text_threshold,
        max_detections=options.max_detections,
        masks="rle",
    )
    body, invocation = djl.call(sagemaker, target, request, step="segment")
    parsed = djl.parse_grounded_sam(body)
    width, height = context.image.original_width, context.image.original_height
    sx, sy = width / parsed["width"], height / parsed["height"]
    bucket = settings.requests_bucket
    drawing = _overlay(s3, context, settings) if parsed["detections"] and options.overlay else None
    detections: list[dict[str, Any]] = []
    rle_items: list[dict[str, Any]] = []
    for index, item in enumerate(parsed["detections"]):
        detection: dict[str, Any] = {
            "label": item["label"],
            "score": round(item["score"], 4),
            "box": scale_box(item["box"], sx=sx, sy=sy, width=width, height=height),
        }
        if item["rle"] is not None:
            from vlp.pipeline.masks import encode_mask, mask_image  # Pillow only when there is a mask to draw

            try:
                mask = mask_image(item["rle"], size=(width, height))
                png, area = encode_mask(mask)
            except (ValueError, KeyError, TypeError):
                raise model_error(
                    ModelFailedError, "segment", "The grounded_sam model returned an invalid mask."
                ) from None
            key = result_key(context.caller, context.request_id, f"mask-{index}.png")
            storage.write(s3, bucket, key, png, "image/png")
            if drawing is not None:
                drawing.tint(mask, index)
            del mask
            detection["mask"] = {"key": key, "area": area, "rle": item["rle"]}
            rle_items.append({"index": index, "label": item["label"], "rle": item["rle"]})
        if drawing is not None:
            drawing.outline(index, detection["box"], detection["label"], detection["score"])
        detections.append(detection)
    overlay = None
    if drawing is not None:
        key = result_key(context.caller, context.request_id, OVERLAY_NAME)
        storage.write(s3, bucket, key, drawing.png(), "image/png")
        overlay = {"key": key}
    masks_rle = None
    rle_size = sum(len(json.dumps(entry["rle"], separators=(",", ":"))) for entry in rle_items)
    if rle_size > rle_budget:
        key = result_key(context.caller, context.request_id, "masks-rle.json")
        document = json.dumps({"request_id": context.request_id, "masks": rle_items}, separators=(",", ":"))
        storage.write(s3, bucket, key, document.encode("utf-8"), "application/json")
        for detection in detections:
            if "mask" in detection:
                detection["mask"].pop("rle", None)
        masks_rle = {"key": key, "count": len(rle_items), "bytes": len(document)}
    models = [parsed.get("model"), parsed.get("sam_model")]
    return SegmentResult(
        detections=[Detection.model_validate(detection) for detection in detections],
        masks_rle=MasksRle.model_validate(masks_rle) if masks_rle is not None else None,
        overlay=S3Object.model_validate(overlay) if overlay is not None else None,
        prompts=prompts,
        warnings=warnings,
        model=parsed.get("model"),
        sam_model=parsed.get("sam_model"),
        random_weights=any(is_random_model(m) for m in models) or body.get("random_weights") is True,
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
    )
