"""The plan step (Llama-2 on TGI): sub-tasks for the answer, when the request asks for detail
(``options.detail``). It reads only the newest question and always decodes greedily: it is an internal step, not
the answer."""

from __future__ import annotations

import time
from typing import Any

from vlp.inference import tgi
from vlp.pipeline.helpers import elapsed_ms, endpoint, parse_context
from vlp.pipeline.models import PlanResult
from vlp.settings import PipelineSettings
from vlp.steps import NO_ANSWER_TASKS

QUESTION_WITHOUT_TEXT = "Describe this image in detail."  # what the plan plans for when the request has no text
PLAN_SYSTEM = (
    "You plan how to answer a question about an image that you cannot see. Reply only with a numbered list of "
    "at most 5 short steps saying what to look at in the image to answer well, one step per line."
)
PLAN_MAX_NEW_TOKENS = 200


def run(event: Any, *, sagemaker: Any, settings: PipelineSettings) -> PlanResult:
    started = time.perf_counter()
    context = parse_context(event)
    if not context.options.detail:
        return PlanResult(skipped=True, reason="detail not requested", elapsed_ms=elapsed_ms(started))
    if context.task in NO_ANSWER_TASKS:
        return PlanResult(skipped=True, reason="not needed for the task", elapsed_ms=elapsed_ms(started))
    target = endpoint(settings, "llm")
    if target is None:
        return PlanResult(
            skipped=True,
            reason="llm not deployed",
            warnings=["The planning model is not deployed here: answered without a plan."],
            elapsed_ms=elapsed_ms(started),
        )
    question = context.full_text() or QUESTION_WITHOUT_TEXT
    request = tgi.generate_request(
        tgi.llama2_prompt(PLAN_SYSTEM, question), max_new_tokens=PLAN_MAX_NEW_TOKENS, stop=tgi.LLAMA2_STOP
    )
    text, invocation = tgi.generate(sagemaker, target, request, step="plan", stop=tgi.LLAMA2_STOP)
    return PlanResult(
        steps=tgi.parse_plan(text),
        random_weights=tgi.reports_random_weights(invocation),
        model_ms=round(invocation.elapsed_ms, 1),
        elapsed_ms=elapsed_ms(started),
    )
