"""A stand-in for the Hugging Face TGI containers (roles vlm and llm), which cannot run on CPU.

It speaks TGI's SageMaker route (`/invocations`, schema `SagemakerRequest` of ../shared/contracts/tgi-openapi.json):
a `/generate`-shaped body (`{"inputs", "parameters"}`) gets `[{"generated_text": ...}]`, a Messages API body
(`{"messages", ...}`) gets a `ChatCompletion`. Bodies are validated against the published schema first; an invalid
one gets TGI's 422 `{"error", "error_type": "validation"}`, as the real container answers.

The text is a clearly labelled placeholder: no language model runs in local mode.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from local.common import ROOT

SCHEMA_PATH = ROOT.parent / "shared" / "contracts" / "tgi-openapi.json"
MAX_STOP_SEQUENCES = 4
MAX_TOTAL_TOKENS = 4096
PLACEHOLDER = "[local TGI stand-in: placeholder text, no model ran]"


class SchemaError(ValueError):
    pass


class Validator:
    """The subset of OpenAPI 3.0/3.1 schema keywords TGI's document uses."""

    def __init__(self, document: dict) -> None:
        self.schemas = document.get("components", {}).get("schemas", {})

    def check(self, value: Any, schema: dict, where: str = "body") -> None:
        if "$ref" in schema:
            return self.check(value, self.schemas[schema["$ref"].rsplit("/", 1)[-1]], where)
        if value is None and schema.get("nullable"):
            return None
        for sub in schema.get("allOf", []):
            self.check(value, sub, where)
        if "oneOf" in schema or "anyOf" in schema:
            options = schema.get("oneOf") or schema.get("anyOf")
            passed = 0
            errors = []
            for sub in options:
                try:
                    self.check(value, sub, where)
                    passed += 1
                except SchemaError as error:
                    errors.append(str(error))
            if passed == 0:
                raise SchemaError(errors[0] if len(errors) == 1 else f"{where}: matches none of the accepted shapes")
        kind = schema.get("type")
        types = {"object": dict, "array": list, "string": str, "boolean": bool}
        if kind in types and not isinstance(value, types[kind]):
            raise SchemaError(f"{where}: expected {kind}")
        if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            raise SchemaError(f"{where}: expected an integer")
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise SchemaError(f"{where}: expected a number")
        if "enum" in schema and value not in schema["enum"]:
            raise SchemaError(f"{where}: must be one of {schema['enum']}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._bounds(value, schema, where)
        if isinstance(value, list):
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                raise SchemaError(f"{where}: at most {schema['maxItems']} items")
            if "minItems" in schema and len(value) < schema["minItems"]:
                raise SchemaError(f"{where}: at least {schema['minItems']} items")
            for index, item in enumerate(value):
                if "items" in schema:
                    self.check(item, schema["items"], f"{where}[{index}]")
        if isinstance(value, dict):
            for name in schema.get("required", []):
                if name not in value:
                    raise SchemaError(f"{where}: missing field `{name}`")
            for name, sub in schema.get("properties", {}).items():
                if name in value:
                    self.check(value[name], sub, f"{where}.{name}")
        return None

    @staticmethod
    def _bounds(value: float, schema: dict, where: str) -> None:
        low = schema.get("minimum")
        exclusive = schema.get("exclusiveMinimum")
        if isinstance(exclusive, bool):  # OpenAPI 3.0 style
            if low is not None and (value <= low if exclusive else value < low):
                raise SchemaError(f"{where}: must be {'>' if exclusive else '>='} {low}")
        else:
            if low is not None and value < low:
                raise SchemaError(f"{where}: must be >= {low}")
            if exclusive is not None and value <= exclusive:
                raise SchemaError(f"{where}: must be > {exclusive}")
        high = schema.get("maximum")
        if high is not None and value > high:
            raise SchemaError(f"{where}: must be <= {high}")


class TgiStandIn:
    def __init__(self, role: str, model_id: str | None = None) -> None:
        self.role = role
        self.model_id = model_id or f"local-tgi-standin-{role}"
        document = json.loads(SCHEMA_PATH.read_text()) if SCHEMA_PATH.is_file() else {}
        self.validator = Validator(document) if document else None

    def _validation_error(self, message: str) -> tuple[int, dict]:
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
        schema = {"$ref": "#/components/schemas/ChatRequest" if chat else "#/components/schemas/GenerateRequest"}
        if self.validator is not None:
            try:
                self.validator.check(request, schema)
            except SchemaError as error:
                return self._validation_error(str(error))
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
        match = re.search(r"User:(.*?)(<end_of_utterance>|$)", prompt, re.S) or re.search(
            r"<</SYS>>\s*(.*?)\s*\[/INST\]", prompt, re.S
        )
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
    print(Path(SCHEMA_PATH).is_file())
