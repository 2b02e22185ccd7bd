"""Standard (jobs) executions keep no user data in their state (docs/pipeline.md "Jobs: user data in S3").

Step Functions Standard keeps every execution's history (each state's input and output, the execution's input and
output) for 90 days, whatever the requests bucket's lifecycle says. So for an execution whose ``source`` is
``jobs``, user data travels through the requests bucket, under the execution's own prefix, and the state holds
only what the Choice states and the next steps need that is not user data (ids, keys, sizes, option flags, the
task and route, timings), plus ``stored``: the key of the S3 document that holds the rest.

    inputs/<caller>/<request id>/request.json          the request (the jobs function writes it: {"request": ...})
    inputs/<caller>/<request id>/steps/<step>.json     what a step's result keeps out of the state
    results/<caller>/<request id>/result.json          the job's result (the assemble step; GET /v1/jobs/{id})

What stays inline is declared on the typed models (``inline_fields``: an allow-list, vlp.pipeline.models), so a
new step's result keeps only the common fields (step, skipped, timings, model) inline and stores everything else,
without a line here. The step wrapper (vlp.runtime.step_handler) calls ``load`` before a step runs and ``keep``
after it: one place for every step. Express executions (POST /v1/analyze) keep their data inline: no history is
kept for them, and the synchronous path pays no S3 round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from vlp.dicts import deep_merge
from vlp.keys import CALLER_RE, UUID_RE, input_key, input_prefix, is_caller_key, result_key
from vlp.pipeline import storage
from vlp.steps import ASSEMBLE, REQUEST_DOCUMENT, RESULT_DOCUMENT, STEPS, STEPS_FOLDER

JOBS = "jobs"  # the execution input's ``source`` of the Standard machine
STORED = "stored"  # the state field that names a stored document
JSON = "application/json"
REDACTED = "[redacted]"
_MIN_REDACTED_CHARS = 3  # shorter strings are too common to redact from an error message


def request_key(caller: str, request_id: str) -> str:
    return input_key(caller, request_id, REQUEST_DOCUMENT)


def step_key(caller: str, request_id: str, step: str) -> str:
    return input_key(caller, request_id, f"{STEPS_FOLDER}/{step}.json")


def job_result_key(caller: str, request_id: str) -> str:
    return result_key(caller, request_id, RESULT_DOCUMENT)


def _ids(event: dict[str, Any]) -> tuple[str, str]:
    caller, request_id = event.get("caller"), event.get("request_id")
    if not (isinstance(caller, str) and CALLER_RE.fullmatch(caller)):
        raise ValueError("a jobs execution's state has no valid caller")
    if not (isinstance(request_id, str) and UUID_RE.fullmatch(request_id)):
        raise ValueError("a jobs execution's state has no valid request_id")
    return caller, request_id


# ---- splitting a typed model: what stays in the state, what goes to S3 ----


def inline_fields(model: BaseModel) -> frozenset[str] | None:
    """The fields of ``model`` a jobs state keeps (the model's ``inline_fields``, or the table in
    vlp.pipeline.models for the request models it does not define); None: every field (no user data in it)."""
    from vlp.pipeline.models import EXTERNAL_INLINE_FIELDS

    found = EXTERNAL_INLINE_FIELDS.get(type(model))
    return found if found is not None else getattr(type(model), "inline_fields", None)


def split(model: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inline, stored) JSON of ``model``: the inline fields stay; a nested model in an inline field is split by its
    own declaration; every other field is stored."""
    allowed = inline_fields(model)
    inline: dict[str, Any] = {}
    stored: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if allowed is not None and name not in allowed:
            if value is not None:  # absent = the default; a null would hide a later state's result when merged
                stored[name] = _dump(value)
        elif isinstance(value, BaseModel) and inline_fields(value) is not None:
            inline[name], nested = split(value)
            if nested:
                stored[name] = nested
        else:
            inline[name] = _dump(value)
    return inline, stored


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if isinstance(value, dict):
        return {key: _dump(item) for key, item in value.items()}
    return value


def merge(inline: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """``split``'s inverse: the stored fields put back into the inline ones (nested objects merged)."""
    return deep_merge(inline, stored)


# ---- the step wrapper's two calls ----


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """A stored document: a JSON object (ValueError when it is not one; storage's errors when it cannot be read)."""
    value = json.loads(storage.read(s3, bucket, key))
    if not isinstance(value, dict):
        raise ValueError("a stored document is not a JSON object")
    return value


def write_json(s3: Any, bucket: str, key: str, document: dict[str, Any]) -> None:
    data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    storage.write(s3, bucket, key, data, JSON)


def load(s3: Any, bucket: str, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The state with every stored document merged back where its ``stored`` key was, and those documents.
    Only documents under the execution's own ``inputs/<caller>/<request id>/`` are read."""
    caller, request_id = _ids(event)
    own = input_prefix(caller, request_id)
    documents: dict[str, dict[str, Any]] = {}  # by key: each read once

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(item) for item in value]
        if not isinstance(value, dict):
            return value
        node = {name: walk(item) for name, item in value.items() if name != STORED}
        key = value.get(STORED)
        if key is None:
            return node
        if not (isinstance(key, str) and key.startswith(own) and key.endswith(".json") and ".." not in key):
            raise ValueError("a stored document outside the execution's own prefix")
        if key not in documents:
            documents[key] = read_json(s3, bucket, key)
        return merge(node, documents[key])

    state = walk(event)
    return state, list(documents.values())


def keep(s3: Any, bucket: str, step: str, event: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What a jobs state keeps of the step's ``result``: the first step's context and every step result split
    (the rest stored under ``steps/<step>.json``); the last step's response stored whole as the job's result."""
    from vlp.pipeline.models import Context, result_model

    caller, request_id = _ids(event)
    if step == ASSEMBLE:
        key = job_result_key(caller, request_id)
        write_json(s3, bucket, key, result)
        return {"request_id": request_id, "result_key": key}
    model = Context if step == STEPS[0].name else result_model(result.get("step"))
    inline, stored = split(model.model_validate(result))
    if not stored:
        return inline
    key = step_key(caller, request_id, step)
    write_json(s3, bucket, key, stored)
    return {**inline, STORED: key}


# ---- error messages: no user text in a Fail state's Cause ----


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def redactions(documents: list[dict[str, Any]]) -> list[str]:
    """The user strings of the stored documents (longest first), to take out of an error message."""
    from typing import get_args

    from vlp.requests import Task

    common = set(get_args(Task))  # task names: they appear in error messages as the API's words
    found = {
        text
        for text in _strings(documents)
        # S3 keys this API issued (UPLOAD_NOT_FOUND names them) are ids, not the caller's words
        if len(text.strip()) >= _MIN_REDACTED_CHARS and text not in common and not is_caller_key(text)
    }
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_error(error: BaseException, secrets: list[str]) -> None:
    """Take the user strings out of ``error`` (in place): the message and details of a VlpError (its Cause JSON),
    the arguments of any other exception (``str(error)``, the Lambda errorMessage)."""
    from vlp.errors import VlpError

    if not secrets:
        return
    if isinstance(error, VlpError):
        error.message = redact(error.message, secrets)
        if error.details:
            error.details = [json.loads(redact(json.dumps(item), _json_escaped(secrets))) for item in error.details]
        return
    escaped = secrets + [repr(secret)[1:-1] for secret in secrets]  # as a repr() of the value shows it
    error.args = tuple(redact(arg, escaped) if isinstance(arg, str) else arg for arg in error.args)


def _json_escaped(secrets: list[str]) -> list[str]:
    return [json.dumps(secret)[1:-1] for secret in secrets]
