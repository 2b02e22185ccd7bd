"""DJL Python-engine plumbing for a model package: request errors, JSON fields, image decoding, serving.properties
values, worker start-up, device/dtype, model locations, and the batch driver that turns per-request results into one
DJL Output.

One file for every DJL package: the package build (stacks/model_package_asset.py) copies model_packages/shared/
into each model.tar.gz, where DJL puts it on sys.path beside model.py; tests put the folder on sys.path.

Wire conventions (docs/model-contracts.md, "Conventions"):
- success: 200 and the response object;
- bad input: 4xx and {"error": {"code", "message"}}; in a dynamic batch each request gets its own body, an error
  body carries its "status", and the batch answers 200 with one `Content-Type` (JSON) for every request;
- a fault inside the model: 500 MODEL_FAILURE; the worker keeps serving.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, overload

from vlp_errors import ContainerError

logger = logging.getLogger(__name__)
N = TypeVar("N", int, float)
S = TypeVar("S")

STATUS_BY_CODE = {
    "INVALID_JSON": 400,
    "INVALID_REQUEST": 400,
    "INVALID_IMAGE": 400,
    "IMAGE_TOO_LARGE": 413,
    "VALUE_OUT_OF_RANGE": 422,
    "MODEL_FAILURE": 500,
}
# The reason phrase of a single (unbatched) Output's status.
HTTP_REASONS = {
    200: "OK",
    400: "Bad Request",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
JSON_CONTENT_TYPE = "application/json"
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
# An org/name Hugging Face hub id (a bare legacy name such as "gpt2" is not taken for one: it is more likely a
# sub-folder that was not staged).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")


class RequestError(ContainerError):
    """A request the package refuses (4xx) or could not serve (500), its status from STATUS_BY_CODE by default."""

    statuses = STATUS_BY_CODE


def model_failure() -> RequestError:
    return RequestError("MODEL_FAILURE", "the model failed while serving this request; retrying may succeed", 500)


# ---- request fields ----


def read_json_object(item) -> dict:
    """The JSON object in a request's body (`item` is a djl_python Input)."""
    try:
        raw = item.get_as_bytes()
    except Exception:
        raw = None
    if not raw:
        raise RequestError("INVALID_JSON", "the request body is empty; send a JSON object")
    try:
        body = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError("INVALID_JSON", f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise RequestError("INVALID_REQUEST", "the request body must be a JSON object")
    return body


def int_field(body: Mapping, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError("INVALID_REQUEST", f"'{name}' must be an integer")
    if not low <= value <= high:
        raise RequestError("VALUE_OUT_OF_RANGE", f"'{name}' must be between {low} and {high}, got {value}")
    return value


def float_field(body: Mapping, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError("INVALID_REQUEST", f"'{name}' must be a number")
    if not (math.isfinite(value) and low <= value <= high):
        raise RequestError("VALUE_OUT_OF_RANGE", f"'{name}' must be between {low} and {high}, got {value}")
    return float(value)


def choice_field(body: Mapping, name: str, default: str, choices: Sequence[str], code: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RequestError("INVALID_REQUEST", f"'{name}' must be a string")
    if value not in choices:
        raise RequestError(code, f"unknown {name} '{value[:50]}'; expected one of {', '.join(choices)}")
    return value


def list_field(body: Mapping, name: str, hint: str, *, empty_code: str, missing_code: str = "INVALID_REQUEST") -> list:
    """A required, non-empty list `body[name]`; `hint` says what it holds (e.g. "candidate labels")."""
    value = body.get(name)
    if value is None:
        raise RequestError(missing_code, f"'{name}' is required: {hint}")
    if not isinstance(value, list):
        raise RequestError("INVALID_REQUEST", f"'{name}' must be a list of {hint}")
    if not value:
        raise RequestError(empty_code, f"'{name}' is empty: send {hint}")
    return value


def decode_image(body: Mapping, max_pixels: int, field: str = "image"):
    """The RGB PIL image in `body[field]` (base64 of JPEG, PNG or WebP bytes; a data: URI prefix is tolerated).

    The pixel count is checked from the header, before the pixels are decoded (no decompression bombs)."""
    value = body.get(field)
    if value is None:
        raise RequestError("INVALID_REQUEST", f"'{field}' is required: base64 JPEG, PNG or WebP bytes")
    if not isinstance(value, str):
        raise RequestError("INVALID_REQUEST", f"'{field}' must be a base64 string")
    if value.startswith("data:") and "," in value[:100]:
        value = value.split(",", 1)[1]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # tolerate line breaks and missing padding, as many encoders produce them
            data = base64.b64decode("".join(value.split()) + "==", validate=False)
        except (binascii.Error, ValueError):
            raise RequestError("INVALID_IMAGE", f"'{field}' is not valid base64") from None
    return decode_image_bytes(data, max_pixels, field)


def decode_image_bytes(data: bytes, max_pixels: int, field: str = "image") -> Any:
    """The RGB PIL image in JPEG, PNG or WebP `data` (from `body[field]`, or an object read from S3), EXIF
    orientation applied; the pixel count is checked from the header, before the pixels are decoded."""
    from PIL import Image, ImageOps

    if not data:
        raise RequestError("INVALID_IMAGE", f"'{field}' is empty")
    try:
        image: Image.Image = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
    except Image.DecompressionBombError:
        raise RequestError("IMAGE_TOO_LARGE", f"the image has more than {max_pixels} pixels") from None
    except Exception:
        raise RequestError("INVALID_IMAGE", f"'{field}' is not a JPEG, PNG or WebP image") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise RequestError("INVALID_IMAGE", "the image has no pixels")
    if width * height > max_pixels:
        raise RequestError(
            "IMAGE_TOO_LARGE", f"the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
        )
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        return image.convert("RGB")
    except Exception:
        raise RequestError("INVALID_IMAGE", "the image data is truncated or corrupt") from None


def limit_aspect(image, max_ratio: float = 2.0):
    """Centre-crop an image whose sides differ by more than `max_ratio`.

    CLIP preprocessing resizes the short side and keeps the centre square, so this changes nothing it sees, but a
    10000x10 strip no longer becomes a huge tensor on the way."""
    width, height = image.size
    if max(width, height) <= max_ratio * min(width, height):
        return image
    if width > height:
        keep = int(max_ratio * height)
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    keep = int(max_ratio * width)
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))


# ---- serving.properties ----


@dataclass(frozen=True)
class Properties:
    """serving.properties values as DJL passes them (the `option.` prefix removed, every value a string)."""

    values: Mapping[str, Any]

    @overload
    def get_str(self, name: str, default: str) -> str: ...
    @overload
    def get_str(self, name: str, default: None = None) -> str | None: ...
    def get_str(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        if value is None or str(value).strip() == "":
            return default
        return str(value).strip()

    def get_int(self, name: str, default: int, low: int = 0, high: int = 2**62) -> int:
        return self._number(name, default, low, high, int, "an integer")

    def get_float(self, name: str, default: float, low: float = -math.inf, high: float = math.inf) -> float:
        return self._number(name, default, low, high, float, "a number")

    def _number(self, name: str, default: N, low: float, high: float, parse: Callable[[str], N], kind: str) -> N:
        raw = self.get_str(name)
        if raw is None:
            return default
        try:
            value = parse(raw)
        except ValueError:
            raise ValueError(f"option.{name} must be {kind}, got {raw!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"option.{name} must be between {low} and {high}, got {value}")
        return value

    def read(self, settings_cls: type[S], **given: Any) -> S:
        """A settings dataclass: each field declared with `option(...)` read from the option of its name (int, float
        or str, by its annotation), the others from `given`."""
        values = dict(given)
        for item in fields(settings_cls):  # type: ignore[arg-type]  # S is a dataclass
            if OPTION not in item.metadata:
                continue
            bounds = {key: value for key, value in item.metadata[OPTION].items() if value is not None}
            default: Any = item.default  # option() always sets one
            if item.type == "str":
                values[item.name] = self.get_str(item.name, default)
            elif item.type == "int":
                values[item.name] = self.get_int(item.name, default, **bounds)
            else:
                values[item.name] = self.get_float(item.name, default, **bounds)
        return settings_cls(**values)


OPTION = "vlp_option"


def option(default: Any, *, low: float | None = None, high: float | None = None) -> Any:
    """A settings dataclass field that `Properties.read` takes from `option.<field name>`: `default` when unset,
    else the value, refused (the worker does not start) outside `low`..`high` (get_int's and get_float's bounds
    when not given)."""
    return field(default=default, metadata={OPTION: {"low": low, "high": high}})


# ---- worker start-up ----


def start_worker(package_dir: str | os.PathLike, properties: Mapping[str, Any]) -> Properties:
    """What every package does first on its initialisation request: refuse to start with versions other than the
    ones its tests ran (vlp_requirements), read a gated hub model's token through the role (HF_TOKEN_SECRET_ID,
    vlp_hub_token), and wrap DJL's properties."""
    from vlp_hub_token import load_hub_token
    from vlp_requirements import verify_installed

    verify_installed(Path(package_dir))
    load_hub_token()
    return Properties(properties)


class ModelService(ABC):
    """A package's worker service as `handle_with` drives it: `initialize` (once: start_worker, the settings from
    `settings_cls.from_properties`, the device and dtype from option.dtype, then the package's `load`), `parse`
    (one request's JSON object, through `parse_body`) and `run` (the parsed requests, each through `predict` unless
    the package overrides it to serve them together)."""

    settings_cls: Any  # a settings dataclass with a from_properties(props) classmethod

    def __init__(self, package_dir: str | os.PathLike) -> None:
        self.package_dir = Path(package_dir)
        self.initialized = False
        self.device: Any = None  # set by initialize(), before any request
        self.dtype: Any = None

    def initialize(self, properties: Mapping[str, Any]) -> None:
        started = time.monotonic()
        props = start_worker(self.package_dir, properties)
        self.settings = self.settings_cls.from_properties(props)
        self.device, self.dtype = select_device_and_dtype(props)
        logger.info("%s: loading on %s (%s): %s", self.package_dir.name, self.device, self.dtype, self.settings)
        self.load()
        self.initialized = True
        logger.info("%s: ready in %.1fs", self.package_dir.name, time.monotonic() - started)

    @abstractmethod
    def load(self) -> None:
        """Load the models (self.settings, self.device and self.dtype are set)."""

    @abstractmethod
    def parse_body(self, body: dict) -> Any:
        """One request's JSON object as the package's request type (RequestError when it is bad)."""

    def predict(self, request: Any) -> dict:
        """One request's answer: the default `run` calls it per request; a package that batches overrides `run`."""
        raise TypeError(f"{type(self).__name__} overrides neither predict nor run")

    def parse(self, item: Any) -> Any:
        return self.parse_body(read_json_object(item))

    def run(self, parsed: list) -> list:
        return run_each(self.predict, parsed)


def load_pretrained(model_cls: Any, source: str, device: Any, dtype: Any) -> Any:
    """A transformers model from `source`, in `dtype` on `device`, in eval mode."""
    model = model_cls.from_pretrained(source, **dtype_kwargs(dtype))
    return model.to(device).eval()


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """The setting every package that takes an image has: its pixel cap (option.max_image_pixels)."""

    max_image_pixels: int = option(DEFAULT_MAX_IMAGE_PIXELS, low=1)


class ImageService(ModelService):
    """A ModelService whose requests carry an image in `image` (CLIP-style models): `image(body)` decodes it under
    the settings' pixel cap and centre-crops a side longer than `max_aspect` times the other (limit_aspect)."""

    settings: ImageSettings
    max_aspect = 2.0

    def image(self, body: Mapping) -> Any:
        return limit_aspect(decode_image(body, self.settings.max_image_pixels), self.max_aspect)


DTYPES = {
    "fp16": "float16",
    "float16": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp32": "float32",
    "float32": "float32",
    "auto": "auto",
}


def select_device_and_dtype(props: Properties):
    """cuda (DJL's `device_id` when given) if available, else cpu; `dtype` fp16/bf16/fp32/auto, fp32 on cpu (half
    precision on CPU is slow or unsupported)."""
    import torch

    name = (props.get_str("dtype", "fp16") or "fp16").lower()
    if name not in DTYPES:
        raise ValueError(f"option.dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    if torch.cuda.is_available():
        device_id = props.get_int("device_id", -1, low=-1)
        device = torch.device(f"cuda:{device_id}" if device_id >= 0 else "cuda")
        dtype = torch.float16 if name == "auto" else getattr(torch, DTYPES[name])
    else:
        device = torch.device("cpu")
        if DTYPES[name] not in ("float32", "auto"):
            logger.info("no GPU: running in float32 instead of %s", name)
        dtype = torch.float32
    return device, dtype


def dtype_kwargs(dtype) -> dict:
    """`from_pretrained`'s dtype argument: `dtype` from transformers 4.56, `torch_dtype` before (the LMI container
    may ship an older transformers than our tests)."""
    import transformers

    major, minor = (int(part) for part in re.findall(r"\d+", transformers.__version__)[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


# ---- model locations ----


def resolve_model_source(
    value: str | None, roots: Sequence[str | os.PathLike | None], *, fallback: str | None = None
) -> str:
    """Where to load a model from: `value` as an existing directory (absolute, or relative to one of `roots`, such
    as the directory DJL resolved `option.model_id` to, or the package's model_dir), else `value` as an org/name
    hub id. Nothing named, or a bare name that is no sub-folder of a root (serving.properties' "sam" while nothing
    is staged), gives `fallback` when there is one (see `model_id_fallback`); otherwise it is an error."""
    if value:
        path = Path(value)
        if path.is_absolute():
            if path.is_dir():
                return str(path)
            raise FileNotFoundError(f"model directory {value} does not exist")
        for root in roots:
            if root and (Path(root) / value).is_dir():
                return str(Path(root) / value)
        if value.startswith("s3://"):
            raise ValueError(f"{value}: S3 locations are resolved by the container for option.model_id only")
        if path.is_dir():
            return str(path.resolve())
        if HUB_ID.match(value):
            return value  # a hub id: needs network (or the HF cache) at start-up
    searched = [str(root) for root in roots if root]
    if fallback:
        if value:
            logger.warning("no %r folder under %s: using %s", value, searched, fallback)
        return fallback
    if not value:
        raise ValueError("no model location given")
    raise FileNotFoundError(
        f"model weights not found: no folder {value!r} under {searched} and {value!r} is neither a local directory "
        "nor a hub id (owner/name)"
    )


def model_id_fallback(model_id: str | None, default: str, model_type: str | None = None) -> str | None:
    """What a package's main model loads from when its sub-folder is not staged: `option.model_id` itself when it
    is a model directory (a config.json, of `model_type` when given) or a hub id; `default` when no model_id is
    set; None (no fallback: a staged directory without the model is an error) otherwise."""
    if not model_id:
        return default
    config = Path(model_id) / "config.json"
    if config.is_file():
        try:
            found = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError):
            found = None
        return model_id if model_type is None or found == model_type else None
    return model_id if HUB_ID.match(model_id) else None


def display_name(explicit: str | None, source: str) -> str:
    """The model id a response reports: option.<x>_name when configured, else the hub id loaded, else the hub id
    a staged folder's config.json records, else the folder's name (never a made-up hub id)."""
    if explicit:
        return explicit
    if not Path(source).is_dir():
        return source
    try:
        recorded = json.loads((Path(source) / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
        if isinstance(recorded, str) and HUB_ID.match(recorded):
            return recorded
    except (OSError, ValueError, AttributeError):
        pass
    return Path(source).resolve().name


class ModelLocation(NamedTuple):
    source: str  # what from_pretrained loads: a directory or a hub id
    name: str  # what responses report


def locate_model(
    props: Properties,
    id_option: str,
    name_option: str,
    roots: Sequence[str | os.PathLike | None],
    fallback: str | None = None,
) -> ModelLocation:
    """A model named by option.<id_option> (resolve_model_source) and reported as option.<name_option>
    (display_name)."""
    source = resolve_model_source(props.get_str(id_option), roots, fallback=fallback)
    return ModelLocation(source, display_name(props.get_str(name_option), source))


# ---- the batch driver ----


def handle_with(service, inputs, output_cls, *, name: str, what: str = "the model"):
    """A package's DJL `handle`: the first (empty) call initialises `service` (a failure there fails the worker's
    start, visibly); a request reaching a worker whose initialisation failed gets 500 MODEL_FAILURE; later calls
    are served by `service.parse` / `service.run`."""
    if not service.initialized:
        if inputs.is_empty():
            service.initialize(inputs.get_properties())
            return None
        try:
            service.initialize(inputs.get_properties())
        except Exception:
            logger.exception("%s: initialisation failed", name)

            def not_loaded(_item):
                raise RequestError("MODEL_FAILURE", f"{what} not loaded; retrying may succeed", 500)

            return serve(inputs, output_cls, not_loaded, lambda parsed: parsed)
    if inputs.is_empty():
        return None
    return serve(inputs, output_cls, service.parse, service.run)


def serve(inputs, output_cls, parse: Callable[[Any], Any], run: Callable[[list], list]):
    """Answer one DJL request or dynamic batch.

    `parse(item)` validates one request (raising RequestError); `run(parsed)` serves the valid ones together and
    returns one result (a dict or a RequestError) per request. When `run` fails on a batch it is retried request
    by request, so one request that breaks the model fails alone."""
    batched = inputs.is_batch()
    items = inputs.get_batches() if batched else [inputs]
    results: list[Any] = [None] * len(items)
    valid: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        try:
            valid.append((i, parse(item)))
        except RequestError as error:
            results[i] = error
        except Exception:
            logger.exception("request validation failed unexpectedly")
            results[i] = model_failure()
    if valid:
        for i, result in zip([i for i, _ in valid], _run_isolated(run, [p for _, p in valid]), strict=True):
            results[i] = result
    return _to_output(output_cls, results, batched)


def run_each(serve_one: Callable[[Any], dict], parsed: Sequence[Any]) -> list:
    """A `run` for a package that serves its requests one after another: one result per request, serve_one's
    response or the RequestError it refused that request with (a limit only inference finds, such as a response
    over its size cap). Any other exception escapes, so `serve` retries the requests one by one."""
    results: list[Any] = []
    for request in parsed:
        try:
            results.append(serve_one(request))
        except RequestError as error:
            results.append(error)
    return results


def _run_isolated(run: Callable[[list], list], parsed: list) -> list:
    try:
        results = run(parsed)
        if len(results) != len(parsed):
            raise RuntimeError(f"run returned {len(results)} results for {len(parsed)} requests")
        return results
    except Exception:
        logger.exception("inference failed for a batch of %d", len(parsed))
        _release_cuda_memory()
        if len(parsed) == 1:
            return [model_failure()]
    return [_run_isolated(run, [p])[0] for p in parsed]


def _release_cuda_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # best effort: the next request may still fit
        logger.debug("could not release accelerator memory", exc_info=True)


def _to_output(output_cls, results: list, batched: bool):
    """One DJL Output. Every body is JSON (results and errors alike), so one `Content-Type` serves all: in a
    dynamic batch DJL gives each request the Output's code and properties and only its own content entry
    (docs/model-contracts.md, "Conventions")."""
    output = output_cls()
    output.add_property("Content-Type", JSON_CONTENT_TYPE)
    if not batched:
        result = results[0]
        if isinstance(result, RequestError):
            output.set_code(result.status)
            output.set_message(result.code)
            result = result.body(batched=False)
        output.add_as_json(result, key="data")
        return output
    for i, result in enumerate(results):
        body = result.body(batched=True) if isinstance(result, RequestError) else result
        output.add_as_json(body, key="data", batch_index=i)
    return output
