"""The tag step (CLIP zero-shot): the request's labels scored against the image (role clip_tagging)."""

from __future__ import annotations

import time
from typing import Any

from vlp.errors import CallerError
from vlp.inference import djl
from vlp.pipeline.helpers import elapsed_ms, image_b64, is_random_model, parse_context, require_endpoint
from vlp.pipeline.models import Tag, TagResult
from vlp.settings import PipelineSettings


def run(event: Any, *, s3: Any, sagemaker: Any, settings: PipelineSettings) -> TagResult:
    started = time.perf_counter()
    context = parse_context(event)
    target = require_endpoint(settings, "clip_tagging", what="Task 'tag'")
    if not context.labels:
        raise CallerError("Task 'tag' needs labels to score.", code="MISSING_LABELS")
    options = context.options
    request = djl.clip_tagging_request(
        image_b64(s3, context, settings),
        context.labels,
        mode=options.tag_mode,
        top_k=options.top_k,
        threshold=options.tag_threshold,
        prompt_template=options.label_template,
    )
    body, invocation = djl.call(sagemaker, target, request, step="tag")
    parsed = djl.parse_tags(body)
    return TagResult(
        tags=[Tag.model_validate(tag) for tag in parsed["tags"]],
        mode=parsed["mode"],
        model=parsed["model"],
        random_weights=is_random_model(parsed["model"], flag=body.get("random_weights")),
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
    )
