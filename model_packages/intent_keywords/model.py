"""DJL Serving (LMI container, Python engine) entry point: zero-shot intent and KeyBERT keywords.

DJL calls `handle` once with an empty Input when the worker starts (we load the NLI and keyword models then,
once), then once per request or per dynamic batch; a batch shares its NLI forward passes. Wire format and error
codes: docs/model-contracts.md ("intent_keywords", "Conventions"). Bad input gets a 4xx Output and the worker keeps
serving; an unexpected fault gets a 500 MODEL_FAILURE Output. A failure to load at start-up raises, so the
container fails its health check (SERVING_FAIL_FAST) instead of serving errors.
"""

from __future__ import annotations

import vlp_vendor  # noqa: F401  (first: vendored dependencies go on sys.path before any third-party import)

# isort: split
import json
import logging
from pathlib import Path
from typing import Any

import intent_keywords_core as core
from djl_python import Input, Output
from vlp_djl_support import HTTP_REASONS
from vlp_hub_token import load_hub_token
from vlp_requirements import verify_installed

LOGGER = logging.getLogger(__name__)

_model: core.IntentKeywords | None = None


class _InvalidJson(Exception):
    pass


def _initialise(properties: dict) -> None:
    global _model
    if _model is None:  # DJL initialises a worker once; never reload
        verify_installed(Path(__file__).resolve().parent)  # the versions the tests ran, or no worker
        load_hub_token()  # HF_TOKEN_SECRET_ID: a gated hub model's token, read through the role
        _model = core.IntentKeywords(core.Settings.from_properties(properties))


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


def _free_accelerator_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # best effort: the next request may still fit
        LOGGER.debug("could not release accelerator memory", exc_info=True)


def _body(item: Input) -> Any:
    try:
        return json.loads(bytes(item.get_as_bytes()).decode("utf-8"))  # the "data" entry
    except (UnicodeDecodeError, ValueError, TypeError, KeyError):
        return _InvalidJson()


def _status_and_body(result: Any) -> tuple[int, dict]:
    if isinstance(result, dict):
        return 200, result
    if isinstance(result, _InvalidJson):
        return _error(400, "INVALID_JSON", "the request body is not valid JSON")
    if isinstance(result, core.IntentKeywordsError):
        LOGGER.info("rejected request: %s %s", result.code, result.message)
        return _error(result.status, result.code, result.message)
    LOGGER.error("intent_keywords request failed: %r", result)
    return _error(500, "MODEL_FAILURE", f"{type(result).__name__}: {str(result)[:300]}")


def _run(items: list[Input]) -> list[tuple[int, dict]]:
    """(HTTP status, body) per request, in order. Never raises."""
    bodies = [_body(item) for item in items]
    if _model is None:
        return [
            _error(500, "MODEL_FAILURE", "the models are not loaded (the worker was not initialised)") for _ in items
        ]
    results: list[Any] = list(bodies)
    valid = [i for i, body in enumerate(bodies) if not isinstance(body, _InvalidJson)]
    try:
        for i, result in zip(valid, _model.predict_many([bodies[i] for i in valid]), strict=True):
            results[i] = result
    except Exception as exc:
        LOGGER.exception("intent_keywords batch failed")
        for i in valid:
            results[i] = exc
    if any(isinstance(r, Exception) and not isinstance(r, (core.IntentKeywordsError, _InvalidJson)) for r in results):
        _free_accelerator_memory()
    return [_status_and_body(result) for result in results]


def handle(inputs: Input) -> Output | None:
    if inputs.is_empty():
        _initialise(inputs.get_properties())
        return None
    outputs = Output()
    # Every body is JSON, errors too: one Content-Type for all (in a batch DJL gives every request the Output's
    # code and properties, and only its own content entry: contract, "Conventions").
    outputs.add_property("Content-Type", "application/json")
    if inputs.is_batch():
        # DJL sends one status for the whole batch: each request's body carries its own (contract, "Conventions").
        for i, (status, body) in enumerate(_run(inputs.get_batches())):
            if status != 200:
                body["error"]["status"] = status
            outputs.add_as_json(body, key="data", batch_index=i)
        return outputs
    status, body = _run([inputs])[0]
    outputs.set_code(status)
    outputs.set_message(HTTP_REASONS.get(status, "Error"))
    outputs.add_as_json(body, key="data")
    return outputs
