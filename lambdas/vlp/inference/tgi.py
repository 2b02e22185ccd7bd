"""Text Generation Inference (VLM: IDEFICS, LLM: Llama-2) through SageMaker InvokeEndpoint.

Two request shapes, both accepted by TGI's SageMaker route (schema ``SagemakerRequest`` of
openapi/tgi-requests.json, the repository's copy of TGI's published schemas):
- ``/generate``: ``{"inputs": <prompt>, "parameters": {...}}`` (schema ``GenerateRequest``), response
  ``[{"generated_text": ...}]`` (or the object alone);
- Messages API (``/v1/chat/completions`` shape, schema ``ChatRequest``), where the configured model supports
  it (``VLM_MESSAGES_API=true``): response ``{"choices": [{"message": {"content": ...}}]}``.

Caller text is sanitised before it enters a prompt: it cannot close the turn (``<end_of_utterance>``,
``[/INST]``...) nor smuggle an image (``![](http://...)``), which would make the model server fetch a URL.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vlp.errors import ModelFailedError, model_error
from vlp.inference.sagemaker import Endpoint, Invocation, invoke, parse_json

IDEFICS_STOP = ["<end_of_utterance>", "\nUser:"]
LLAMA2_STOP = ["</s>", "[INST]"]
_SPECIAL = re.compile(
    r"<end_of_utterance>|<fake_token_around_image>|<image>|<s>|</s>|\[/?INST\]|<</?SYS>>|<\|[a-z_]+\|>", re.IGNORECASE
)
_TURN = re.compile(r"(^|\n)\s*(User|Assistant)\s*:", re.IGNORECASE)


def sanitize(text: str) -> str:
    """Caller text made safe to embed in a chat template."""
    text = _SPECIAL.sub(" ", text)
    text = text.replace("![", "[")
    text = _TURN.sub(lambda m: f"{m.group(1)}{m.group(2)} -", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def idefics_prompt(question: str, image_ref: str) -> str:
    """IDEFICS instruct template: the image goes inline as markdown (URL or data URI)."""
    return f"User: {sanitize(question)}![]({image_ref})<end_of_utterance>\nAssistant:"


def llama2_prompt(system: str, user: str) -> str:
    return f"<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{sanitize(user)} [/INST]"


def generate_request(
    prompt: str,
    *,
    max_new_tokens: int,
    stop: list[str],
    temperature: float | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
) -> dict[str, Any]:
    """A ``GenerateRequest`` body. Greedy decoding unless a temperature is given."""
    parameters: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "stop": stop[:4],  # TGI accepts at most 4 stop sequences
        "return_full_text": False,
        "details": False,
        "do_sample": temperature is not None,
    }
    if temperature is not None:
        parameters["temperature"] = temperature
    if top_p is not None:
        parameters["top_p"] = top_p
    if repetition_penalty is not None:
        parameters["repetition_penalty"] = repetition_penalty
    return {"inputs": prompt, "parameters": parameters}


def chat_request(
    question: str, *, image_url: str | None, max_tokens: int, stop: list[str] | None = None, system: str | None = None
) -> dict[str, Any]:
    """A ``ChatRequest`` body (Messages API); the image as an ``image_url`` chunk."""
    content: list[dict[str, Any]] = [{"type": "text", "text": sanitize(question)}]
    if image_url:
        content.append({"type": "image_url", "image_url": {"url": image_url}})
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": content})
    request: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens}
    if stop:
        request["stop"] = stop[:4]
    return request


def _strip_stops(text: str, stop: list[str]) -> str:
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for sequence in stop:
            token = sequence.strip()
            if token and text.endswith(token):
                text = text[: -len(token)].rstrip()
                changed = True
    return text


def parse_generated(body: Any, *, stop: list[str], step: str, role: str) -> str:
    """The text of a /generate or Messages API response."""
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("generated_text"), str):
        return _strip_stops(body["generated_text"], stop)
    if isinstance(body, dict) and isinstance(body.get("choices"), list) and body["choices"]:
        message = body["choices"][0].get("message") if isinstance(body["choices"][0], dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return _strip_stops(message["content"], stop)
    raise model_error(ModelFailedError, step, f"The {role} model returned an unexpected response (no generated text).")


def reports_random_weights(invocation: Invocation) -> bool:
    """Whether the server says its weights are random (a local test stack's TGI stand-in does)."""
    try:
        body = json.loads(invocation.body)
    except ValueError:
        return False
    first = body[0] if isinstance(body, list) and body else body
    return isinstance(first, dict) and first.get("random_weights") is True


def generate(
    client: Any, endpoint: Endpoint, request: dict[str, Any], *, step: str, stop: list[str]
) -> tuple[str, Invocation]:
    body = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    invocation = invoke(client, endpoint, step=step, body=body)
    text = parse_generated(
        parse_json(invocation, step=step, role=endpoint.role), stop=stop, step=step, role=endpoint.role
    )
    return text, invocation


def parse_plan(text: str, *, limit: int = 6) -> list[str]:
    """Sub-tasks from the LLM's numbered or bulleted list (one per line)."""
    steps = []
    for line in text.splitlines():
        match = re.match(r"^\s*(?:\d+[.)]|[-*\u2022])\s+(.*\S)\s*$", line)
        if match:
            steps.append(match.group(1)[:300])
    if not steps and text.strip():
        steps = [text.strip()[:300]]
    return steps[:limit]
