"""Text Generation Inference (VLM: IDEFICS, LLM: Llama-2) through SageMaker InvokeEndpoint.

Two request shapes, both accepted by TGI's SageMaker route (schema ``SagemakerRequest`` of
openapi/tgi-requests.json, the repository's copy of TGI's published schemas):
- ``/generate``: ``{"inputs": <prompt>, "parameters": {...}}`` (schema ``GenerateRequest``), response
  ``[{"generated_text": ...}]`` (or the object alone);
- Messages API (``/v1/chat/completions`` shape, schema ``ChatRequest``), where the configured model supports
  it (``VLM_MESSAGES_API=true``): response ``{"choices": [{"message": {"content": ...}}]}``.

Caller text (the question and every turn of a conversation's history) is sanitised before it enters a prompt:
it cannot close the turn (``<end_of_utterance>``, ``[/INST]``...), open another (``User:``, ``Assistant:``) nor
smuggle an image (``![](http://...)``), which would make the model server fetch a URL. The Messages API needs the
same care: TGI renders the messages through the model's chat template into one string (image chunks become
``![](url)``) and tokenises that, special tokens included.

Sampling (``Sampling``) is mapped under TGI's own validity rules (router/src/validation.rs and the schemas):
temperature 0 means greedy (``/generate``: ``do_sample: false`` and no temperature, since TGI rejects
``temperature <= 0``; Messages API: ``temperature: 0``, which TGI reads as greedy, while an absent temperature
there samples); ``top_p`` 1 is left out (TGI rejects ``top_p >= 1``); top_p and seed only go with sampling;
``seed`` travels as ``seed + 1`` (the schema says ``seed > 0``; the API accepts 0); ``repetition_penalty`` is a
``/generate`` parameter, and the Messages API's ``presence_penalty`` which TGI maps to ``repetition_penalty =
presence_penalty + 2``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vlp.errors import ModelFailedError, model_error
from vlp.inference.sagemaker import Endpoint, Invocation, invoke, parse_json

IDEFICS_STOP = ["<end_of_utterance>", "\nUser:"]
LLAMA2_STOP = ["</s>", "[INST]"]
_SPECIAL = re.compile(
    r"<end_of_utterance>|<fake_token_around_image>|<image>|<global-img>|<row_\d+_col_\d+>|<s>|</s>|\[/?INST\]"
    r"|<</?SYS>>|<\|[a-z_]+\|>",
    re.IGNORECASE,
)
_TURN = re.compile(r"\b(User|Assistant|System)\s*:", re.IGNORECASE)

Turn = tuple[str, str]  # (role: "user" | "assistant", text): an earlier turn of the conversation


@dataclass(frozen=True)
class Sampling:
    """The request's decoding options (``AnalyzeOptions``): temperature 0 is greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def tgi_seed(self) -> int | None:
        """The seed TGI gets: ours + 1 (TGI's schema wants seed > 0, ours starts at 0); none when greedy."""
        return None if self.greedy or self.seed is None else self.seed + 1

    def ignored(self) -> list[str]:
        """Options given that greedy decoding does not use."""
        if not self.greedy:
            return []
        return [name for name, unused in (("top_p", self.top_p < 1), ("seed", self.seed is not None)) if unused]


GREEDY = Sampling()


def sanitize(text: str) -> str:
    """Caller text made safe to embed in a chat template."""
    text = _SPECIAL.sub(" ", text)
    text = re.sub(r"!+\[", "[", text)  # one pass of replace("![") would turn "!![" into a fresh "!["
    text = _TURN.sub(lambda m: f"{m.group(1)} -", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def idefics_prompt(question: str, image_ref: str, history: Sequence[Turn] = ()) -> str:
    """IDEFICS instruct template: ``User:`` / ``Assistant:`` turns, each closed by ``<end_of_utterance>``; the image
    goes inline as markdown (URL or data URI) in the first user turn, the conversation being about it."""
    parts: list[str] = []
    image = f"![]({image_ref})"
    for role, text in [*history, ("user", question)]:
        if role == "user":
            parts.append(f"User: {sanitize(text)}{image}<end_of_utterance>\n")
            image = ""
        else:
            parts.append(f"Assistant: {sanitize(text)}<end_of_utterance>\n")
    return "".join(parts) + "Assistant:"


def llama2_prompt(system: str, user: str) -> str:
    return f"<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{sanitize(user)} [/INST]"


def _sampled(sampling: Sampling) -> dict[str, Any]:
    """``top_p`` (when below 1) and ``seed`` of a sampled request: both TGI APIs name them alike."""
    if sampling.greedy:
        return {}
    fields: dict[str, Any] = {"top_p": sampling.top_p} if sampling.top_p < 1 else {}
    seed = sampling.tgi_seed()
    if seed is not None:
        fields["seed"] = seed
    return fields


def generate_request(
    prompt: str, *, max_new_tokens: int, stop: list[str], sampling: Sampling = GREEDY
) -> dict[str, Any]:
    """A ``GenerateRequest`` body: greedy decoding unless ``sampling`` has a temperature above 0."""
    parameters: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "stop": stop[:4],  # TGI accepts at most 4 stop sequences
        "return_full_text": False,
        "details": False,
        "do_sample": not sampling.greedy,
    }
    if not sampling.greedy:
        parameters["temperature"] = sampling.temperature
        parameters.update(_sampled(sampling))
    if sampling.repetition_penalty != 1:
        parameters["repetition_penalty"] = sampling.repetition_penalty
    return {"inputs": prompt, "parameters": parameters}


def chat_request(
    question: str,
    *,
    image_url: str | None,
    max_tokens: int,
    stop: list[str] | None = None,
    system: str | None = None,
    history: Sequence[Turn] = (),
    sampling: Sampling = GREEDY,
) -> dict[str, Any]:
    """A ``ChatRequest`` body (Messages API): the history's turns, then the question; the image as an
    ``image_url`` chunk of the first user message."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    image = image_url
    for role, text in [*history, ("user", question)]:
        if role != "user":
            messages.append({"role": "assistant", "content": sanitize(text)})
            continue
        content: list[dict[str, Any]] = [{"type": "text", "text": sanitize(text)}]
        if image:
            content.append({"type": "image_url", "image_url": {"url": image}})
            image = None
        messages.append({"role": "user", "content": content})
    # TGI's Messages API samples when `temperature` is absent: greedy must say 0 explicitly
    request: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": sampling.temperature}
    request.update(_sampled(sampling))
    if sampling.repetition_penalty != 1:
        # TGI: repetition_penalty = presence_penalty + 2 (router/src/lib.rs, ChatRequest::try_into_generate)
        request["presence_penalty"] = round(sampling.repetition_penalty - 2.0, 6)
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
