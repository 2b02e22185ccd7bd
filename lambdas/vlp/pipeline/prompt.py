"""The prompt step (CLIP Interrogator): a text-to-image prompt for the image (role clip_interrogator)."""

from __future__ import annotations

import time
from typing import Any

from vlp.inference import djl
from vlp.pipeline.helpers import elapsed_ms, image_b64, is_random_model, parse_context, require_endpoint
from vlp.pipeline.models import PromptResult
from vlp.settings import PipelineSettings


def run(event: Any, *, s3: Any, sagemaker: Any, settings: PipelineSettings) -> PromptResult:
    started = time.perf_counter()
    context = parse_context(event)
    target = require_endpoint(settings, "clip_interrogator", what="Task 'prompt'")
    request = djl.interrogator_request(image_b64(s3, context, settings), mode=context.options.interrogator_mode)
    body, invocation = djl.call(sagemaker, target, request, step="prompt")
    parsed = djl.parse_interrogator(body)
    models = [parsed.get("model"), parsed.get("caption_model")]
    return PromptResult(
        **parsed,
        random_weights=any(is_random_model(m) for m in models) or body.get("random_weights") is True,
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
    )
