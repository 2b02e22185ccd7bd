"""A test double of DJL Serving's Python engine, as it drives a `model.py` package.

It follows djl-serving's source (GitHub deepjavalibrary/djl-serving, master branch as of 2025, read at these commits):
- engines/python/setup/djl_python/inputs.py (0308fd24) and outputs.py (the version with `batch_index`): the `Input`
  and `Output` objects, their JSON encoding and `Output.error()`;
- engines/python/setup/djl_python/python_sync_engine.py (0818e928): `handle` returning None answers 204, an
  exception raised by `handle` answers `Output().error(str(e))`: 424 "prediction failure" with a JSON body;
- engines/python/src/main/java/ai/djl/python/engine/PyPredictor.java (013b2786): how a dynamic batch is built and
  split (below);
- wlm/src/main/java/ai/djl/serving/wlm/ModelInfo.java (the `OPTION_*` handling added by PR #961, 2023-07):
  serving.properties is read first, then each `OPTION_<NAME>` environment variable is added as `option.<name>`
  (lower-cased) only where the file does not set that key (`Properties.putIfAbsent`): THE FILE WINS. An
  `option.model_id` that is an `s3://` URL is downloaded and replaced by the local directory.
- engines/python/src/main/java/ai/djl/python/engine/PyModel.java and PyProcess.java: the `option.` keys reach the
  Python worker without their prefix, as the properties of the empty initialisation request (no `model_dir`:
  PyEnv puts the model directory on the worker's PYTHONPATH instead), plus the `device_id` python_sync_engine adds.

A dynamic batch (PyPredictor.batchPredict, more than one request):
- the batch Input has `batch_size` and, per request i, its properties as `batch_{iii}.<name>` and its content as
  `batch_{iii}.<key>` (`data` for the body), three digits; `Input.get_batches()` splits them back (inputs.py);
- the Output must hold exactly as many content entries as requests, each keyed `batch_{i}.<key>`
  (`Output.add(..., batch_index=i)`), else the whole batch fails ("Batch output size mismatch");
- every request of the batch gets the Output's code, message and properties: per-request properties such as
  `batch_{i}_Content-Type` are NOT split back out, they reach every caller as they are;
- an Output whose code is >= 300 is given, whole, to every request of the batch.

`install()` registers the double as the `djl_python` module so a package's `from djl_python import Input, Output`
works in tests. `initialise()`, `invoke()` and `invoke_batch()` play DJL's side; `worker_properties()` computes
what the initialisation request carries from a package's serving.properties and the container's environment.
"""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks import serving_properties

DJL_SERVING_SOURCE = "deepjavalibrary/djl-serving master (2025): PyPredictor 013b2786, python_sync_engine 0818e928"
BATCH_OUTPUT_KEY = re.compile(r"batch_(\d+)\.(.*)", re.DOTALL)  # PyPredictor.BATCH_PATTERN


class PairList:
    """Ordered key/value list, as DJL's content container."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.values: list[bytearray] = []

    def add(self, key: str | None = None, value: bytes | bytearray = b"") -> None:
        self.keys.append(key)
        self.values.append(bytearray(value))

    def get(self, key: str) -> bytearray | None:
        for k, v in zip(self.keys, self.values, strict=True):
            if k == key:
                return v
        return None

    def size(self) -> int:
        return len(self.keys)

    def is_empty(self) -> bool:
        return not self.keys

    def key_at(self, i: int) -> str | None:
        return self.keys[i]

    def value_at(self, i: int) -> bytearray:
        return self.values[i]

    def get_keys(self) -> list[str | None]:
        return list(self.keys)


class Input:
    def __init__(self) -> None:
        self.function_name: str | None = None
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
            # e.g. batch_001.Content-Type: request 1's Content-Type (inputs.py slices, whatever the separator)
            if key.startswith("batch_") and key != "batch_size":
                batch[int(key[6:9])].properties[key[10:]] = value
        for i in range(self.content.size()):
            key = self.content.key_at(i) or ""
            batch[int(key[6:9])].content.add(key[10:], self.content.value_at(i))
        return batch

    def get_function_name(self) -> str | None:
        return self.function_name

    def get_properties(self) -> dict[str, str]:
        return self.properties

    def get_property(self, key: str) -> str | None:
        return next((v for k, v in self.properties.items() if k.lower() == key.lower()), None)

    def get_content(self) -> PairList:
        return self.content

    def contains_key(self, key: str) -> bool:
        return self.content.get(key) is not None

    def is_empty(self) -> bool:
        return self.content.is_empty()

    def get_as_bytes(self, key: str | None = None) -> bytearray | None:
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
        raw = self.get_as_bytes(key=key)
        if raw is None:  # the real engine fails here too (None has no decode)
            raise AttributeError("'NoneType' object has no attribute 'decode'")
        return raw.decode("utf-8")

    def get_as_json(self, key: str | None = None) -> Any:
        return json.loads(self.get_as_string(key=key))

    def get_as_image(self, key: str | None = None) -> Any:
        import io

        from PIL import Image

        return Image.open(io.BytesIO(bytes(self.get_as_bytes(key=key) or b"")))


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
        body = {"code": self.code, "message": self.message, "error": error}
        self.add_property("content-type", "application/json")
        self.add_as_json(body)
        return self

    def add_property(self, key: str, val: str) -> Output:
        self.properties[key] = val
        return self

    def add(self, value: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        if key is not None and not isinstance(key, str):
            key = str(key)
        if batch_index is not None:
            key = f"batch_{batch_index}.{key or ''}"
        if isinstance(value, str):
            self.content.add(key=key, value=value.encode("utf-8"))
        elif isinstance(value, (bytes, bytearray)):
            self.content.add(key=key, value=value)
        else:
            self.content.add(key=key, value=self._encode_json(value))
        return self

    def add_as_json(self, val: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        return self.add(self._encode_json(val), key=key, batch_index=batch_index)

    @staticmethod
    def _encode_json(val: Any) -> bytearray:
        # outputs.py: no NaN/Infinity, indented, compact separators
        return bytearray(
            json.dumps(val, ensure_ascii=False, allow_nan=False, indent=2, separators=(",", ":")).encode("utf-8")
        )


def install() -> types.ModuleType:
    """Register this double as the `djl_python` module (idempotent)."""
    module = sys.modules.get("djl_python")
    if module is None or getattr(module, "__is_test_double__", False) is False:
        module = types.ModuleType("djl_python")
        module.Input = Input  # type: ignore[attr-defined]  # a bare ModuleType declares no attributes
        module.Output = Output  # type: ignore[attr-defined]  # as above
        module.__is_test_double__ = True  # type: ignore[attr-defined]  # as above
        sys.modules["djl_python"] = module
        sys.modules["djl_python.inputs"] = module
        sys.modules["djl_python.outputs"] = module
    return module


# ---- model loading: serving.properties, the environment, the initialisation request ----


def model_properties(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """ModelInfo: the package's serving.properties, then `OPTION_<NAME>` as `option.<name>` where the file has
    no such key (the file wins)."""
    props = serving_properties.read_properties(text)
    for name, value in environ.items():
        if name.startswith("OPTION_"):
            props.setdefault("option." + name[len("OPTION_") :].lower(), value)
    return props


def worker_properties(
    package_dir: Path | str,
    environ: Mapping[str, str],
    *,
    downloads: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What `handle` gets in the initialisation request when the container runs the package in `package_dir`
    with the environment `environ`: the `option.` keys without their prefix (PyModel/PyProcess), plus the
    `device_id` python_sync_engine adds (-1: no GPU). `downloads` maps an `s3://` model_id to the local directory
    the container downloaded it to (as ModelInfo.downloadS3 does)."""
    package = Path(package_dir)
    props = model_properties((package / "serving.properties").read_text(encoding="utf-8"), environ)
    options = serving_properties.options(props)
    model_id = options.get("model_id", "")
    if model_id.startswith("s3://"):
        if not downloads or model_id not in downloads:
            raise KeyError(f"{model_id}: say where the container downloaded it (downloads=...)")
        options["model_id"] = downloads[model_id]
    options["device_id"] = "-1"
    return options


def initialise(handle: Callable[[Input], Any], properties: Mapping[str, str]) -> Any:
    """The empty first call DJL makes when a worker starts."""
    init = Input()
    init.properties.update(properties)
    return handle(init)


# ---- requests ----


@dataclass
class Response:
    """What DJL Serving sends back for one request."""

    code: int
    body: Any
    properties: dict[str, str] = field(default_factory=dict)
    message: str = "OK"

    def header(self, name: str) -> str | None:
        """A response property, matched as HTTP matches headers (case-insensitively)."""
        return next((v for k, v in self.properties.items() if k.lower() == name.lower()), None)


def request_input(body: Any, content_type: str = "application/json") -> Input:
    request = Input()
    request.properties["Content-Type"] = content_type
    request.content.add("data", _raw(body))
    return request


def batch_input(bodies: list[Any], content_type: str = "application/json") -> Input:
    """PyPredictor's batch Input: `batch_size`, then per request `batch_{iii}.<property>` and `batch_{iii}.data`."""
    batch = Input()
    batch.properties["batch_size"] = str(len(bodies))
    for i, body in enumerate(bodies):
        prefix = f"batch_{i:03d}."
        batch.properties[prefix + "Content-Type"] = content_type
        batch.content.add(prefix + "data", _raw(body))
    return batch


def _raw(body: Any) -> bytes:
    return bytes(body) if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode("utf-8")


def run_handler(handle: Callable[[Input], Any], inputs: Input) -> Output:
    """python_sync_engine.run_server: what the worker sends back for one Input."""
    try:
        outputs = handle(inputs)
        if outputs is None:
            return Output(code=204, message="No content")
        if not isinstance(outputs, Output):
            return Output().error(f"Invalid output type: {type(outputs)}")
        return outputs
    except Exception as error:  # the engine answers every exception, as below
        if type(error).__name__ in ("OutOfMemoryError", "MemoryError") or "CUDA error: out of memory" in str(error):
            return Output(code=507, message=str(error))
        return Output().error(str(error))


def _decode(raw: bytes | bytearray | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return bytes(raw)


def invoke(handle: Callable[[Input], Any], body: Any, content_type: str = "application/json") -> Response:
    """One request through `handle`, as the caller sees it."""
    output = run_handler(handle, request_input(body, content_type))
    raw = output.content.get("data")
    if raw is None and output.content.size():
        raw = output.content.value_at(0)
    return Response(output.code, _decode(raw), dict(output.properties), output.message)


class BatchFailure(AssertionError):
    """The real engine would fail the whole batch (PyPredictor raises a TranslateException)."""


def invoke_batch(
    handle: Callable[[Input], Any], bodies: list[Any], content_type: str = "application/json"
) -> list[Response]:
    """A dynamic batch through `handle`; one Response per request, in order, as PyPredictor splits it."""
    if len(bodies) < 2:
        raise ValueError("DJL sends a single request as it is, not as a batch: use invoke()")
    output = run_handler(handle, batch_input(bodies, content_type))
    if output.code >= 300:  # the same Output for every request
        raw = output.content.value_at(0) if output.content.size() else None
        return [Response(output.code, _decode(raw), dict(output.properties), output.message) for _ in bodies]
    if output.content.size() != len(bodies):
        raise BatchFailure(f"Batch output size mismatch, expected: {len(bodies)}, actual: {output.content.size()}")
    contents: dict[int, list[tuple[str, bytearray]]] = {i: [] for i in range(len(bodies))}
    for i in range(output.content.size()):
        key = output.content.key_at(i)
        match = BATCH_OUTPUT_KEY.fullmatch(key or "")
        if not match:
            raise BatchFailure(f"Unexpected batch output key: {key}")
        index = int(match.group(1))
        if index not in contents:
            raise BatchFailure(f"batch output key {key} names no request of the batch")
        contents[index].append((match.group(2), output.content.value_at(i)))
    responses = []
    for index, entries in contents.items():
        if len(entries) != 1:  # stricter than DJL, which only counts: one content entry per request
            raise BatchFailure(f"request {index} has {len(entries)} content entries, expected exactly one")
        responses.append(Response(output.code, _decode(entries[0][1]), dict(output.properties), output.message))
    return responses


def contract_status(response: Response) -> int:
    """The status our packages' contract gives one request of a batch: DJL answers a batch with one code (200),
    so an error body carries its own `status` (docs/model-contracts.md, "Conventions"). Not a DJL rule."""
    body = response.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and "status" in body["error"]:
        return int(body["error"]["status"])
    return response.code


def batch_statuses(responses: list[Response]) -> list[int]:
    """Each request's own status in a batch answer (contract_status), after checking what DJL gives every request
    of the batch alike: one code (200) and the one JSON Content-Type."""
    assert [r.code for r in responses] == [200] * len(responses), "DJL: one code for the batch"
    assert all(r.properties == {"Content-Type": "application/json"} for r in responses), "shared by the batch"
    return [contract_status(r) for r in responses]


def refusal_code(response: Response, status: int) -> str:
    """The code of a refused request, after checking the contract's error answer: `status`, and a body holding
    only `error` with a code and a message for a person (docs/model-contracts.md, "Conventions")."""
    assert response.code == status, response.body
    assert set(response.body) == {"error"}, response.body
    message = response.body["error"]["message"]
    assert isinstance(message, str) and message
    return response.body["error"]["code"]
