"""A stand-in for the Hugging Face TGI containers (roles vlm and llm), which cannot run on CPU.

It speaks TGI's SageMaker route (`/invocations`, schema `SagemakerRequest` of openapi/tgi-requests.json, the
project's copy of TGI's published schemas): a `/generate`-shaped body (`{"inputs", "parameters"}`, schema
`CompatGenerateRequest`) gets `[{"generated_text": ...}]`, a Messages API body (`{"messages", ...}`, schema
`ChatRequest`) gets a `ChatCompletion`. Every body is validated against the contract first (local/tgi_contract.py,
jsonschema); an invalid one gets TGI's 422 `{"error", "error_type": "validation"}`, as the real container answers.
The stand-in does not start without the contract file.

The text is a clearly labelled placeholder: no language model runs in local mode.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from local.tgi_contract import TgiContract, contract

MAX_STOP_SEQUENCES = 4
MAX_TOTAL_TOKENS = 4096
PLACEHOLDER = "[local TGI stand-in: placeholder text, no model ran]"


class TgiStandIn:
    def __init__(self, role: str, model_id: str | None = None, tgi_contract: TgiContract | None = None) -> None:
        self.role = role
        self.model_id = model_id or f"local-tgi-standin-{role}"
        # always validates: a missing contract file stops the SageMaker runtime at start (FileNotFoundError)
        self.contract = tgi_contract or contract()

    def _validation_error(self, message: str) -> tuple[int, dict[str, str]]:
        return 422, {"error": f"Input validation error: {message}", "error_type": "validation"}

    def invoke(self, body: bytes) -> tuple[int, Any]:
        try:
            request = json.loads(body)
        except ValueError:
            return 422, {
                "error": "Failed to deserialize the JSON body into the target type",
                "error_type": "validation",
            }
        if not isinstance(request, dict):
            return 422, {
                "error": "Failed to deserialize the JSON body into the target type",
                "error_type": "validation",
            }
        chat = "messages" in request
        # the shape of SagemakerRequest the body means (its oneOf alone would only say "none of the shapes")
        errors = self.contract.errors(request, "ChatRequest" if chat else "CompatGenerateRequest")
        if errors:
            return self._validation_error(errors[0])
        parameters = request.get("parameters") or {}
        stop = (request.get("stop") if chat else parameters.get("stop")) or []
        if len(stop) > MAX_STOP_SEQUENCES:
            return self._validation_error(
                f"stop supports up to {MAX_STOP_SEQUENCES} stop sequences. Given: {len(stop)}"
            )
        max_new = (request.get("max_tokens") if chat else parameters.get("max_new_tokens")) or 0
        if max_new > MAX_TOTAL_TOKENS:
            return self._validation_error(f"max_new_tokens must be <= {MAX_TOTAL_TOKENS}. Given: {max_new}")
        text = self.placeholder(self.question(request, chat))
        if chat:
            return 200, {
                "id": "",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model_id,
                "system_fingerprint": "local-tgi-standin",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "logprobs": None,
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {
                    "prompt_tokens": 0,
                    "completion_tokens": len(text.split()),
                    "total_tokens": len(text.split()),
                },
            }
        return 200, [{"generated_text": text}]

    @staticmethod
    def question(request: dict, chat: bool) -> str:
        if chat:
            for message in reversed(request.get("messages") or []):
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    texts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
                    return " ".join(t for t in texts if isinstance(t, str))
            return ""
        prompt = request.get("inputs") or ""
        prompt = re.sub(r"!\[\]\([^)]*\)", " ", prompt)  # the image (data URI or URL)
        turns = re.findall(r"User:(.*?)(?:<end_of_utterance>|$)", prompt, re.S)  # a conversation: the newest
        if turns:
            return turns[-1].strip()
        match = re.search(r"<</SYS>>\s*(.*?)\s*\[/INST\]", prompt, re.S)
        return (match.group(1) if match else prompt).strip()

    def placeholder(self, question: str) -> str:
        question = " ".join(question.split())[:200]
        if self.role == "llm":
            return (
                f"1. {PLACEHOLDER} look at the main subject\n2. {PLACEHOLDER} look at the background\n"
                f"3. {PLACEHOLDER} answer: {question}"
            )
        return f"{PLACEHOLDER} This would be the {self.role.upper()}'s answer to: {question or 'Describe this image.'}"


def _self_check() -> None:  # pragma: no cover - a quick manual check
    stand_in = TgiStandIn("vlm")
    print(
        stand_in.invoke(
            json.dumps(
                {
                    "inputs": "User: what?![](data:x)<end_of_utterance>\nAssistant:",
                    "parameters": {"max_new_tokens": 10, "stop": ["a"]},
                }
            ).encode()
        )
    )
    print(stand_in.invoke(json.dumps({"inputs": "x", "parameters": {"temperature": 0}}).encode()))


if __name__ == "__main__":  # pragma: no cover
    _self_check()
