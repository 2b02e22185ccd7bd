"""DJL Serving (LMI container, Python engine) entry point: text-prompted detection + segmentation.

DJL calls `handle` once with an empty Input when the worker starts (we load Grounding DINO and SAM then, once),
then once per request or per dynamic batch. Wire format and error codes: docs/model-contracts.md ("grounded_sam",
"Conventions"). Bad input gets a 4xx Output and the worker keeps serving; an unexpected fault gets a 500
MODEL_FAILURE Output. A failure to load at start-up raises, so the container fails its health check
(SERVING_FAIL_FAST) instead of serving errors.
"""

from __future__ import annotations

import vlp_vendor  # noqa: F401  (first: vendored dependencies go on sys.path before any third-party import)

# isort: split
import json
import logging
from pathlib import Path

import grounded_sam_core as core
from djl_python import Input, Output
from vlp_djl_support import HTTP_REASONS
from vlp_hub_token import load_hub_token
from vlp_requirements import verify_installed

LOGGER = logging.getLogger(__name__)

_model: core.GroundedSam | None = None


def _initialise(properties: dict) -> None:
    global _model
    if _model is None:  # DJL initialises a worker once; never reload
        verify_installed(Path(__file__).resolve().parent)  # the versions the tests ran, or no worker
        load_hub_token()  # HF_TOKEN_SECRET_ID: a gated hub model's token, read through the role
        _model = core.GroundedSam(core.Settings.from_properties(properties))


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


def _free_accelerator_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # best effort: the next request may still fit
        LOGGER.debug("could not release accelerator memory", exc_info=True)


def _run_one(item: Input) -> tuple[int, dict]:
    """One request: (HTTP status, response body). Never raises."""
    try:
        try:
            body = json.loads(bytes(item.get_as_bytes()).decode("utf-8"))  # the "data" entry
        except (UnicodeDecodeError, ValueError, TypeError, KeyError):
            return _error(400, "INVALID_JSON", "the request body is not valid JSON")
        if _model is None:
            return _error(500, "MODEL_FAILURE", "the models are not loaded (the worker was not initialised)")
        return 200, _model.predict(body)
    except core.GroundedSamError as exc:
        LOGGER.info("rejected request: %s %s", exc.code, exc.message)
        return _error(exc.status, exc.code, exc.message)
    except Exception as exc:
        LOGGER.exception("grounded_sam request failed")
        _free_accelerator_memory()
        return _error(500, "MODEL_FAILURE", f"{type(exc).__name__}: {str(exc)[:300]}")


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
        for i, item in enumerate(inputs.get_batches()):
            status, body = _run_one(item)
            if status != 200:
                body["error"]["status"] = status
            outputs.add_as_json(body, key="data", batch_index=i)
        return outputs
    status, body = _run_one(inputs)
    outputs.set_code(status)
    outputs.set_message(HTTP_REASONS.get(status, "Error"))
    outputs.add_as_json(body, key="data")
    return outputs
