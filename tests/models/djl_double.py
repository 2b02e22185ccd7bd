"""A test double of DJL Serving's Python engine objects (`djl_python.Input` / `djl_python.Output`).

It follows the contract DJL documents for `model.py` handlers
(https://docs.djl.ai/master/docs/serving/serving/docs/modes.html#python-mode):
- the first call is an initialisation request: `Input.is_empty()` is True and `get_properties()` holds the
  serving.properties options with the `option.` prefix removed, plus `model_dir`;
- a request carries its HTTP headers as properties (`Content-Type`, ...) and its body under the key `data`;
- a dynamic batch carries `batch_size` and keys prefixed `batch_NNN_` (three digits); `get_batches()` splits them;
- an Output holds a status code, a message, properties and keyed content; `add(..., batch_index=i)` prefixes the
  key with `batch_{i}.`; `error()` sets the code and a JSON body.

`install()` registers the double as the `djl_python` module so a package's `from djl_python import Input, Output`
works in tests. `invoke()` plays DJL's side: it builds the Input, calls `handle`, and decodes the Output.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class PairList:
    """Ordered key/value list, as DJL's content container."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.values: list[bytes | bytearray] = []

    def add(self, key: str | None = None, value: bytes | bytearray = b"") -> None:
        self.keys.append(key)
        self.values.append(value)

    def get(self, key: str):
        for k, v in zip(self.keys, self.values):
            if k == key:
                return v
        return None

    def size(self) -> int:
        return len(self.keys)

    def is_empty(self) -> bool:
        return not self.keys

    def key_at(self, i: int):
        return self.keys[i]

    def value_at(self, i: int):
        return self.values[i]

    def get_keys(self) -> list:
        return list(self.keys)


class Input:
    def __init__(self) -> None:
        self.properties: dict[str, str] = {}
        self.content = PairList()

    def is_batch(self) -> bool:
        return "batch_size" in self.properties

    def get_batch_size(self) -> int:
        return int(self.properties.get("batch_size", "1"))

    def get_batches(self) -> list[Input]:
        if not self.is_batch():
            return [self]
        batch = [Input() for _ in range(self.get_batch_size())]
        for key, value in self.properties.items():
            if key.startswith("batch_") and key != "batch_size":
                batch[int(key[6:9])].properties[key[10:]] = value
        for i in range(self.content.size()):
            key = self.content.key_at(i)
            batch[int(key[6:9])].content.add(key[10:], self.content.value_at(i))
        return batch

    def get_properties(self) -> dict:
        return self.properties

    def get_property(self, key: str):
        return next((v for k, v in self.properties.items() if k.lower() == key.lower()), None)

    def get_content(self) -> PairList:
        return self.content

    def contains_key(self, key: str) -> bool:
        return self.content.get(key) is not None

    def is_empty(self) -> bool:
        return self.content.is_empty()

    def get_as_bytes(self, key: str | None = None):
        if self.content.is_empty():
            return None
        if key:
            value = self.content.get(key)
            if value is None:
                raise KeyError(f"requested data for key:{key} is not found!")
            return value
        value = self.content.get("data")
        return value if value is not None else self.content.value_at(0)

    def get_as_string(self, key: str | None = None) -> str:
        return bytes(self.get_as_bytes(key=key)).decode("utf-8")

    def get_as_json(self, key: str | None = None):
        return json.loads(self.get_as_string(key=key))

    def get_as_image(self, key: str | None = None):
        import io

        from PIL import Image

        return Image.open(io.BytesIO(bytes(self.get_as_bytes(key=key))))


class Output:
    def __init__(self, code: int = 200, message: str = "OK") -> None:
        self.code = code
        self.message = message
        self.properties: dict[str, str] = {}
        self.content = PairList()

    def set_code(self, code: int) -> Output:
        self.code = code
        return self

    def set_message(self, message: str) -> Output:
        self.message = message
        return self

    def error(self, error: str, code: int = 424, message: str = "prediction failure") -> Output:
        self.code = code
        self.message = message
        self.add_property("content-type", "application/json")
        self.add_as_json({"code": code, "message": message, "error": error})
        return self

    def add_property(self, key: str, val: str) -> Output:
        self.properties[key] = val
        return self

    def add(self, value: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        if batch_index is not None:
            key = f"batch_{batch_index}.{key or ''}"
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray)):
            value = bytearray(value)
        else:
            value = self._encode_json(value)
        self.content.add(key=key, value=value)
        return self

    def add_as_json(self, val: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        return self.add(self._encode_json(val), key=key, batch_index=batch_index)

    @staticmethod
    def _encode_json(val: Any) -> bytearray:
        # DJL refuses NaN/Infinity in JSON output; so does the double.
        return bytearray(json.dumps(val, ensure_ascii=False, allow_nan=False).encode("utf-8"))


def install() -> types.ModuleType:
    """Register this double as the `djl_python` module (idempotent)."""
    module = sys.modules.get("djl_python")
    if module is None or getattr(module, "__is_test_double__", False) is False:
        module = types.ModuleType("djl_python")
        module.Input = Input
        module.Output = Output
        module.__is_test_double__ = True
        sys.modules["djl_python"] = module
        sys.modules["djl_python.inputs"] = module
        sys.modules["djl_python.outputs"] = module
    return module


@dataclass
class Response:
    """What DJL Serving would send back for one request."""

    code: int
    body: Any
    properties: dict = field(default_factory=dict)


def initialise(handle: Callable[[Input], Any], properties: dict[str, str]) -> Any:
    """The empty first call DJL makes when a worker starts."""
    init = Input()
    init.properties.update(properties)
    return handle(init)


def request_input(body: Any, content_type: str = "application/json") -> Input:
    request = Input()
    request.properties["Content-Type"] = content_type
    raw = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode("utf-8")
    request.content.add("data", bytearray(raw))
    return request


def batch_input(bodies: list[Any], content_type: str = "application/json") -> Input:
    batch = Input()
    batch.properties["batch_size"] = str(len(bodies))
    for i, body in enumerate(bodies):
        batch.properties[f"batch_{i:03d}_Content-Type"] = content_type
        raw = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode("utf-8")
        batch.content.add(f"batch_{i:03d}_data", bytearray(raw))
    return batch


def _decode(raw: bytes | bytearray) -> Any:
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return bytes(raw)


def invoke(handle: Callable[[Input], Any], body: Any, content_type: str = "application/json") -> Response:
    """One request through `handle`, decoded as a client would see it."""
    output = handle(request_input(body, content_type))
    assert isinstance(output, Output), f"handle must return an Output, got {type(output)!r}"
    raw = (
        output.content.get("data")
        if output.content.get("data") is not None
        else (output.content.value_at(0) if output.content.size() else b"")
    )
    return Response(code=output.code, body=_decode(raw), properties=dict(output.properties))


def invoke_batch(handle: Callable[[Input], Any], bodies: list[Any]) -> list[Response]:
    """A dynamic batch through `handle`; one Response per request, in order."""
    output = handle(batch_input(bodies))
    assert isinstance(output, Output), f"handle must return an Output, got {type(output)!r}"
    responses = []
    for i in range(len(bodies)):
        raw = output.content.get(f"batch_{i}.data")
        assert raw is not None, f"no content for batch item {i}"
        body = _decode(raw)
        code = body["error"].get("status", 400) if isinstance(body, dict) and "error" in body else 200
        props = {k[len(f"batch_{i}_") :]: v for k, v in output.properties.items() if k.startswith(f"batch_{i}_")}
        responses.append(Response(code=code, body=body, properties=props))
    return responses
