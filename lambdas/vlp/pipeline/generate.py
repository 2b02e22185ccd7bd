"""The plan step (Llama-2 on TGI: sub-tasks, when the request asks for detail) and the vlm step (IDEFICS on
TGI: the answer about the image).

The vlm step carries a conversation: the request's ``history`` (earlier turns about the same image) goes into the
prompt in the model's own dialogue format before the newest question, and its sampling options (temperature,
top_p, repetition_penalty, seed) become TGI's parameters (vlp.inference.tgi). The plan reads only the newest
question and always decodes greedily: it is an internal step, not the answer."""

from __future__ import annotations

import base64
import time
from typing import Any

from vlp.api.models import AnalyzeOptions
from vlp.inference import tgi
from vlp.pipeline import storage
from vlp.pipeline.context import endpoint, output, parse_context, skipped
from vlp.settings import PipelineSettings

DEFAULT_QUESTION = "Describe this image."
DETAILED_QUESTION = "Describe this image in detail."
PLAN_SYSTEM = (
    "You plan how to answer a question about an image that you cannot see. Reply only with a numbered list of "
    "at most 5 short steps saying what to look at in the image to answer well, one step per line."
)
PLAN_MAX_NEW_TOKENS = 200
IMAGE_URL_EXPIRY_SECONDS = 300  # the VLM fetches the image within the request


def run_plan(event: Any, *, sagemaker: Any, settings: PipelineSettings) -> dict[str, Any]:
    started = time.perf_counter()
    context = parse_context(event)
    if not context.options.detail:
        return skipped(started, "detail not requested", steps=[])
    if context.task in ("tag", "prompt"):
        return skipped(started, "not needed for the task", steps=[])
    target = endpoint(settings, "llm")
    if target is None:
        return skipped(
            started,
            "llm not deployed",
            steps=[],
            warnings=["The planning model is not deployed here: answered without a plan."],
        )
    question = context.full_text() or DETAILED_QUESTION
    request = tgi.generate_request(
        tgi.llama2_prompt(PLAN_SYSTEM, question), max_new_tokens=PLAN_MAX_NEW_TOKENS, stop=tgi.LLAMA2_STOP
    )
    text, invocation = tgi.generate(sagemaker, target, request, step="plan", stop=tgi.LLAMA2_STOP)
    return output(
        started,
        steps=tgi.parse_plan(text),
        random_weights=tgi.reports_random_weights(invocation),
        model_ms=round(invocation.elapsed_ms, 1),
    )


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


def run_vlm(event: Any, *, s3: Any, sagemaker: Any, settings: PipelineSettings) -> dict[str, Any]:
    started = time.perf_counter()
    context = parse_context(event)
    plan = context.plan if isinstance(context.plan, dict) else {}
    plan_steps = [step for step in plan.get("steps") or [] if isinstance(step, str)]
    plan_info = {"steps": plan_steps, "elapsed_ms": plan.get("elapsed_ms")} if plan else None
    warnings = list(plan.get("warnings") or [])
    if context.task in ("tag", "prompt"):
        return skipped(started, "not needed for the task", answer=None, plan=plan_info)
    target = endpoint(settings, "vlm")
    if target is None:
        # a forced `describe` was refused by the validate step; `auto` learns its route later (assemble decides)
        return skipped(started, "vlm not deployed", answer=None, plan=plan_info, warnings=warnings)
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
    return output(
        started,
        answer=answer,
        plan=plan_info,
        warnings=warnings,
        image_transport=settings.vlm_image_transport,
        history_turns=len(history),
        random_weights=tgi.reports_random_weights(invocation),
        model_ms=round(invocation.elapsed_ms, 1),
    )
