"""The answer step (the VLM, IDEFICS on TGI): the answer about the image, with the plan when the Plan step made one.

It carries a conversation: the request's ``history`` (earlier turns about the same image) goes into the
prompt in the model's own dialogue format before the newest question, and its sampling options (temperature,
top_p, repetition_penalty, seed) become TGI's parameters (vlp.inference.tgi). Error codes stay VLM_* (vlp.steps).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from vlp.inference import tgi
from vlp.pipeline import storage
from vlp.pipeline.helpers import elapsed_ms, endpoint, parse_context
from vlp.pipeline.models import AnswerResult, PlanResult
from vlp.requests import AnalyzeOptions
from vlp.settings import PipelineSettings
from vlp.steps import NO_ANSWER_TASKS

DEFAULT_QUESTION = "Describe this image."
DETAILED_QUESTION = "Describe this image in detail."
IMAGE_URL_EXPIRY_SECONDS = 300  # the VLM fetches the image within the request


def image_reference(s3: Any, *, bucket: str, key: str, transport: str) -> str:
    """A data URI of the VLM copy of the image, or a short-lived presigned GET URL of it."""
    if transport == "presigned_url":
        return s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=IMAGE_URL_EXPIRY_SECONDS
        )
    data = storage.read(s3, bucket, key)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def sampling_of(options: AnalyzeOptions) -> tgi.Sampling:
    return tgi.Sampling(
        temperature=options.temperature,
        top_p=options.top_p,
        repetition_penalty=options.repetition_penalty,
        seed=options.seed,
    )


def build_question(text: str | None, plan_steps: list[str], *, detail: bool) -> str:
    question = text or (DETAILED_QUESTION if detail else DEFAULT_QUESTION)
    if plan_steps:
        listed = "\n".join(f"{index}. {step}" for index, step in enumerate(plan_steps, start=1))
        question = f"{question}\nAnswer in detail, covering these points:\n{listed}"
    elif detail and text:
        question = f"{question}\nAnswer in detail."
    return question


def run(event: Any, *, s3: Any, sagemaker: Any, settings: PipelineSettings) -> AnswerResult:
    started = time.perf_counter()
    context = parse_context(event)
    plan: PlanResult | None = context.plan
    plan_steps = plan.steps if plan is not None else []
    warnings = list(plan.warnings) if plan is not None else []
    if context.task in NO_ANSWER_TASKS:
        return AnswerResult(skipped=True, reason="not needed for the task", plan=plan, elapsed_ms=elapsed_ms(started))
    target = endpoint(settings, "vlm")
    if target is None:
        # a forced `describe` was refused by the validate step; `auto` learns its route later (assemble decides)
        return AnswerResult(
            skipped=True, reason="vlm not deployed", plan=plan, warnings=warnings, elapsed_ms=elapsed_ms(started)
        )
    question = build_question(context.full_text(), plan_steps, detail=context.options.detail)
    image = image_reference(
        s3, bucket=settings.requests_bucket, key=context.image.vlm_key, transport=settings.vlm_image_transport
    )
    options = context.options
    history = [(turn.role, turn.text) for turn in context.history or []]
    sampling = sampling_of(options)
    ignored = sampling.ignored()
    if ignored:
        verb = "apply" if len(ignored) > 1 else "applies"
        warnings.append(
            f"{' and '.join(ignored)} only {verb} when sampling (temperature > 0): the answer was decoded greedily."
        )
    if settings.vlm_messages_api:
        request = tgi.chat_request(
            question,
            image_url=image,
            max_tokens=options.max_new_tokens,
            stop=tgi.IDEFICS_STOP,
            history=history,
            sampling=sampling,
        )
    else:
        request = tgi.generate_request(
            tgi.idefics_prompt(question, image, history),
            max_new_tokens=options.max_new_tokens,
            stop=tgi.IDEFICS_STOP,
            sampling=sampling,
        )
    answer, invocation = tgi.generate(sagemaker, target, request, step="vlm", stop=tgi.IDEFICS_STOP)
    return AnswerResult(
        answer=answer,
        plan=plan,
        warnings=warnings,
        image_transport=settings.vlm_image_transport,
        history_turns=len(history),
        random_weights=tgi.reports_random_weights(invocation),
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
    )
