"""The interrogate step (route restyle): a description of the image from the CLIP Interrogator (role
clip_interrogator, `best` mode unless the caller chose one), which the restyle step puts after the style's prefix.
Skipped when the caller described the image (``prompt``)."""

from __future__ import annotations

import time
from typing import Any

from vlp.inference import djl
from vlp.pipeline.helpers import elapsed_ms, image_b64, is_random_model, parse_context, require_endpoint
from vlp.pipeline.models import InterrogateResult
from vlp.settings import PipelineSettings

STEP = "interrogate"


def run(event: Any, *, s3: Any, sagemaker: Any, settings: PipelineSettings) -> InterrogateResult:
    started = time.perf_counter()
    context = parse_context(event)
    if context.prompt is not None:
        return InterrogateResult(skipped=True, reason="description given by the caller", elapsed_ms=elapsed_ms(started))
    target = require_endpoint(settings, "clip_interrogator", what="Task 'restyle' without a prompt")
    mode = context.options.interrogator_mode
    request = djl.interrogator_request(image_b64(s3, context, settings), mode=mode)
    body, invocation = djl.call(sagemaker, target, request, step=STEP)
    parsed = djl.parse_interrogator(body, step=STEP)
    models = [parsed.get("model"), parsed.get("caption_model")]
    return InterrogateResult(
        prompt=parsed["prompt"],
        mode=parsed.get("mode") or mode,
        model=parsed.get("model"),
        caption_model=parsed.get("caption_model"),
        random_weights=any(is_random_model(m) for m in models) or body.get("random_weights") is True,
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
    )
