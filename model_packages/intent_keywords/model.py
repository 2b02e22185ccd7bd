"""DJL Serving (LMI container, Python engine) entry point: zero-shot intent and KeyBERT keywords.

DJL calls `handle` once with an empty Input when the worker starts (the NLI and keyword models load then, once),
then once per request or per dynamic batch; a batch shares its NLI forward passes. Wire format and error codes:
docs/model-contracts.md ("intent_keywords", "Conventions"); the shared batch driver (vlp_djl_support.handle_with)
answers bad input with a 4xx and a fault with 500 MODEL_FAILURE, and the worker keeps serving. A failure to load at
start-up raises, so the container fails its health check (SERVING_FAIL_FAST) instead of serving errors.
"""

from __future__ import annotations

import vlp_vendor  # noqa: F401  (first: vendored dependencies go on sys.path before any third-party import)

# isort: split
from pathlib import Path

import intent_keywords_core as core
from djl_python import Input, Output
from vlp_djl_support import handle_with

_service = core.IntentKeywords(Path(__file__).resolve().parent)


def handle(inputs: Input) -> Output | None:
    """DJL entry point: the first (empty) call loads the model(s); later calls are requests or dynamic batches."""
    return handle_with(_service, inputs, Output, name="intent_keywords", what="the models are")
