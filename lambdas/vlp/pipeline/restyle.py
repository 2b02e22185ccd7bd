"""The restyle step: the style's prompt composed with the description (vlp.styles: within CLIP's 77-token window),
then SDXL img2img on the restyle endpoint, which reads the normalised image and writes
results/<caller>/<request id>/restyled.png itself (S3 references both ways: a PNG would not fit SageMaker's 6 MB
response). This function touches no S3."""

from __future__ import annotations

import time
from typing import Any

from vlp.errors import ModelFailedError, model_error
from vlp.inference import djl
from vlp.keys import result_key
from vlp.pipeline.helpers import elapsed_ms, is_random_model, parse_context, require_endpoint
from vlp.pipeline.models import RestyledImage, RestyleResult
from vlp.settings import PipelineSettings
from vlp.styles import compose

STEP = "restyle"
OUTPUT_NAME = "restyled.png"
TRUNCATED_WARNING = (
    "The restyle prompt (the style and the description) is longer than the image model's 77-token window: "
    "it was cut to fit (restyle.prompt is what the model read)."
)


def run(event: Any, *, sagemaker: Any, settings: PipelineSettings) -> RestyleResult:
    started = time.perf_counter()
    context = parse_context(event)
    target = require_endpoint(settings, "restyle", what="Task 'restyle'")
    interrogation = context.interrogate
    description = context.prompt or (interrogation.prompt if interrogation is not None else None)
    if not description:  # the Interrogate state runs first: without it the definition is wired wrong
        raise model_error(ModelFailedError, "interrogate", "The image has no description to restyle it from.")
    options = context.options
    composed = compose(context.style, context.style_prompt, description, options.negative_prompt)
    output_key = result_key(context.caller, context.request_id, OUTPUT_NAME)
    request = djl.restyle_request(
        bucket=settings.requests_bucket,
        image_key=context.image.key,
        output_key=output_key,
        prompt=composed.prompt,
        negative_prompt=composed.negative_prompt,
        strength=options.strength,
        steps=options.steps,
        guidance_scale=options.guidance_scale,
        seed=options.seed,
    )
    body, invocation = djl.call(sagemaker, target, request, step=STEP)
    parsed = djl.parse_restyle(body, output_key=output_key, step=STEP)
    truncated = composed.truncated or parsed["truncated"]
    return RestyleResult(
        style=context.style,
        prompt=composed.prompt,
        negative_prompt=composed.negative_prompt,
        source_prompt=description,
        truncated=truncated,
        restyled=RestyledImage(key=output_key, width=parsed["width"], height=parsed["height"], seed=parsed["seed"]),
        steps=options.steps,
        strength=options.strength,
        guidance_scale=options.guidance_scale,
        interrogation=interrogation,
        model=parsed["model"],
        random_weights=is_random_model(parsed["model"], flag=parsed["random_weights"]),
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
        warnings=[TRUNCATED_WARNING] if truncated else [],
    )
