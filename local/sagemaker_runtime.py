"""A local SageMaker runtime (runs in .venv-models): the InvokeEndpoint wire protocol over the model packages.

    POST /endpoints/<EndpointName>/invocations

is what boto3's `sagemaker-runtime` client sends, so `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:<port>`
points the Lambda code at it unchanged. Behind each endpoint:

- DJL roles (intent_keywords, grounded_sam, clip_tagging, clip_interrogator): the package's model.py, loaded once
  and driven through DJL's Input/Output objects (tests/models/djl_double.py plays DJL), one request at a time per
  model (one DJL worker);
- asr: the Whisper container's own server (`python -m whisper_server serve`) as a subprocess;
- vlm, llm: a TGI stand-in (local/tgi_standin.py) with labelled placeholder text.

Errors are shaped like SageMaker's: a container 4xx/5xx becomes `ModelError` (HTTP 424, OriginalStatusCode,
OriginalMessage), and injected faults give ThrottlingException, ModelNotReadyException, ServiceUnavailable, ...
Responses of random-weight models get `"random_weights": true`.

Admin routes (tests, benchmark, docs/local-mode.md):
    GET    /_admin/endpoints            endpoints, roles, weights
    POST   /_admin/faults               {"endpoint": name|role, "kind": ..., "count": N, ...}
    DELETE /_admin/faults               clear every fault
    POST   /_admin/latency              {"endpoint": name|role, "fixed_ms": 100} or {"answer_after_ms": 300}
    DELETE /_admin/latency
    GET    /_admin/stats                invocations per endpoint and outcome
    GET    /_admin/requests             the last requests each endpoint received (JSON bodies; data URIs and strings
                                        above 20,000 characters cut)
    POST   /_admin/reset                faults, latency, stats and recorded requests cleared
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.common import (
    ACCOUNT,
    REGION,
    ROOT,
    Handler,
    Server,
    ServiceError,
    die_with_parent,
    free_port,
    setup_logging,
    stop_process,
)

log = logging.getLogger("sagemaker")
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # SageMaker real-time: 6 MB
RECENT_REQUESTS = 20  # per endpoint, for GET /_admin/requests
RECORDED_STRING_CHARS = 20_000  # longer strings (base64 images) are recorded as "<N chars>"
_DATA_URI = re.compile(r"(data:[\w/+.-]+;base64,)[A-Za-z0-9+/=]+")  # recorded as "data:<type>;base64,<N chars>"
PACKAGES = ROOT / "model_packages"
FAULT_KINDS = (
    "throttle",
    "container_error",
    "model_not_ready",
    "service_unavailable",
    "internal_failure",
    "invocation_timeout",
    "delay",
    "connection_reset",
)


# The injected faults that are the runtime service's own answers: kind -> (error code, HTTP status, message with
# {endpoint}, extra response fields), worded as the real service words them.
_SERVICE_FAULTS: dict[str, tuple[str, int, str, dict[str, Any]]] = {
    "throttle": ("ThrottlingException", 400, "Rate exceeded", {}),
    "model_not_ready": (
        "ModelNotReadyException",
        429,
        "Model for endpoint {endpoint} is not ready: no instance is running.",
        {},
    ),
    "service_unavailable": ("ServiceUnavailable", 503, "Service is unavailable. Try again later.", {}),
    "internal_failure": ("InternalFailure", 500, "An internal error occurred.", {}),
    "invocation_timeout": (
        "ModelError",
        424,
        "Your invocation timed out while waiting for a response from container primary. Review the latency "
        "metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
        {"ErrorCode": "INVOCATION_TIMEOUT"},
    ),
}


class SageMakerError(ServiceError):
    """An error response of the SageMaker runtime service itself (not the container's)."""


def model_error(endpoint: str, status: int, body: bytes) -> SageMakerError:
    text = body.decode("utf-8", "replace")
    kind = "client" if 400 <= status < 500 else "server"
    return SageMakerError(
        "ModelError",
        424,
        f'Received {kind} error ({status}) from primary with message "{text[:1000]}". See '
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:group="
        f"/aws/sagemaker/Endpoints/{endpoint} in account {ACCOUNT} for more information.",
        OriginalStatusCode=status,
        OriginalMessage=text,
        LogStreamArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{endpoint}",
        ErrorCode="CLIENT_ERROR_FROM_MODEL" if kind == "client" else "SERVER_ERROR_FROM_MODEL",
    )


# ---- backends ----


class DjlBackend:
    """A DJL Python-engine package: model.py's handle(), initialised once with the weights' properties."""

    def __init__(self, role: str, properties: dict[str, str]) -> None:
        sys.path.insert(0, str(ROOT / "tests" / "models"))
        import djl_double  # DJL's Input/Output contract (tests/models/djl_double.py)

        djl_double.install()
        self.djl = djl_double
        self.role = role
        self.lock = threading.Lock()
        shared = str(PACKAGES / "shared")
        if shared not in sys.path:
            sys.path.append(shared)
        package_dir = str(PACKAGES / role)
        spec = importlib.util.spec_from_file_location(f"vlp_local_{role}_model", PACKAGES / role / "model.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"model_packages/{role}/model.py cannot be loaded")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        sys.path.insert(0, package_dir)  # model.py imports its sibling modules
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(package_dir)
        self.module = module
        started = time.monotonic()
        result = djl_double.initialise(module.handle, properties)
        if result is not None:
            raise RuntimeError(f"{role}: the initialisation request returned {result!r}")
        log.info("%s: model.py initialised in %.1f s", role, time.monotonic() - started)

    def invoke(self, body: bytes, content_type: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        request = self.djl.Input()
        request.properties["Content-Type"] = content_type
        for name, value in headers.items():
            if name.lower().startswith("x-amzn-sagemaker-"):
                request.properties[name] = value
        request.content.add("data", bytearray(body))
        with self.lock:
            output = self.module.handle(request)
        raw = output.content.get("data")
        if raw is None:
            raw = output.content.value_at(0) if output.content.size() else b""
        content = {k.lower(): v for k, v in output.properties.items()}.get("content-type", "application/json")
        return output.code, content, bytes(raw)


class WhisperBackend:
    """The Whisper container's server as a subprocess (what SageMaker runs behind the asr endpoint)."""

    def __init__(self, model_dir: str, model_id: str, log_dir: Path, threads: int = 1) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISPER_", "MAX_AUDIO_", "MODEL_"))}
        env.update(
            PYTHONPATH=str(PACKAGES / "whisper"),
            MODEL_DIR=model_dir,
            MODEL_ID=model_id,
            SAGEMAKER_BIND_TO_PORT=str(self.port),
            WHISPER_HOST="127.0.0.1",
            HF_HUB_OFFLINE="1",
            WHISPER_CPU_THREADS=str(threads),
            WHISPER_NUM_WORKERS="1",
            WHISPER_MAX_QUEUE="64",
            # the pipeline's own limit (MAX_AUDIO_BYTES) is 5 MiB; keep the container's default duration limit
            MAX_AUDIO_BYTES=str(25 * 1024 * 1024),
        )
        if "random" in model_id:
            # random weights fail Whisper's quality checks on every window: no sampled temperature fallback
            env["WHISPER_TEMPERATURES"] = "0"
        self.log_path = log_dir / "whisper.log"
        with open(self.log_path, "ab") as log_file:  # the server keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "whisper_server", "serve"],
                cwd=PACKAGES / "whisper",
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=lambda: die_with_parent(always=True),
            )
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = None

    def wait_ready(self, timeout: float = 300.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"whisper_server exited with {self.process.returncode}; see {self.log_path}")
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    log.info("asr: whisper_server ready on %s", self.url)
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"whisper_server did not become ready; see {self.log_path}")

    def invoke(self, body: bytes, content_type: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        import requests

        forward = {"Content-Type": content_type}
        for name, value in headers.items():
            if name.lower() in ("x-amzn-sagemaker-custom-attributes", "accept"):
                forward[name] = value
        response = requests.post(self.url + "/invocations", data=body, headers=forward, timeout=600)
        return response.status_code, response.headers.get("Content-Type", "application/json"), response.content

    def stop(self) -> None:
        stop_process(self.process)


class TgiBackend:
    def __init__(self, role: str) -> None:
        from local.tgi_standin import TgiStandIn

        self.stand_in = TgiStandIn(role)

    def invoke(self, body: bytes, content_type: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        status, payload = self.stand_in.invoke(body)
        return status, "application/json", json.dumps(payload).encode()


# ---- endpoints, faults, latency ----


@dataclass
class Fault:
    kind: str
    remaining: int  # -1: every invocation until cleared
    status: int = 500
    body: Any = None
    delay_ms: float = 0.0


@dataclass
class Endpoint:
    name: str
    role: str
    backend: Any
    random_weights: bool
    inference_component: str | None = None
    model: str | None = None
    faults: list[Fault] = field(default_factory=list)
    fixed_ms: float = 0.0  # added to every invocation
    answer_after_ms: float = 0.0  # the response leaves no earlier than this after the request arrived
    stats: dict[str, int] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)  # the last RECENT_REQUESTS requests, oldest first

    def record(self, body: bytes, headers: Any) -> None:
        """Keep what the endpoint was asked (tests check what the pipeline sent), long strings cut."""
        try:
            decoded: Any = _cut_long_strings(json.loads(body))
        except ValueError:
            decoded = None
        self.recent.append(
            {
                "content_type": headers.get("Content-Type"),
                "custom_attributes": headers.get("X-Amzn-SageMaker-Custom-Attributes"),
                "bytes": len(body),
                "json": decoded,
            }
        )
        del self.recent[:-RECENT_REQUESTS]

    def count(self, outcome: str) -> None:
        """`invocations` counts requests as they arrive; the outcome is counted when the answer leaves."""
        self.stats[outcome] = self.stats.get(outcome, 0) + 1


class Runtime:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.lock = threading.Lock()
        self.whisper: WhisperBackend | None = None

    def find(self, name_or_role: str) -> Endpoint:
        if name_or_role in self.endpoints:
            return self.endpoints[name_or_role]
        for endpoint in self.endpoints.values():
            if endpoint.role == name_or_role:
                return endpoint
        raise KeyError(name_or_role)

    def next_fault(self, endpoint: Endpoint) -> Fault | None:
        with self.lock:
            if not endpoint.faults:
                return None
            fault = endpoint.faults[0]
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    endpoint.faults.pop(0)
            return fault

    def invoke(self, endpoint: Endpoint, body: bytes, content_type: str, headers: dict[str, str]):
        """(status, content type, body) of a successful invocation, else raises SageMakerError."""
        started = time.monotonic()
        if endpoint.fixed_ms:
            time.sleep(endpoint.fixed_ms / 1000)
        fault = self.next_fault(endpoint)
        if fault is not None:
            outcome = self._fault(endpoint, fault)
            if outcome is not None:
                return outcome
        status, response_type, data = endpoint.backend.invoke(body, content_type, headers)
        if status >= 400:
            raise model_error(endpoint.name, status, data)
        if endpoint.random_weights and response_type.startswith("application/json"):
            data = _flag_random(data, endpoint.role)
        if endpoint.answer_after_ms:
            remaining = endpoint.answer_after_ms / 1000 - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
        return status, response_type, data

    def _fault(self, endpoint: Endpoint, fault: Fault):
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        kind = fault.kind
        if kind == "delay":
            return None  # then serve normally
        if kind in _SERVICE_FAULTS:
            code, status, message, extra = _SERVICE_FAULTS[kind]
            raise SageMakerError(code, status, message.format(endpoint=endpoint.name), **extra)
        if kind == "container_error":
            body = fault.body
            if body is None:
                body = (
                    {"error": {"code": "MODEL_FAILURE", "message": "injected fault: the model failed"}}
                    if fault.status >= 500
                    else {"error": {"code": "INVALID_IMAGE", "message": "injected fault: the model refused the input"}}
                )
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            raise model_error(endpoint.name, fault.status, raw)
        if kind == "connection_reset":
            raise ConnectionResetError("injected fault")
        raise SageMakerError("InternalFailure", 500, f"unknown injected fault {kind}")


def _cut_long_strings(value: Any) -> Any:
    if isinstance(value, str):
        value = _DATA_URI.sub(lambda m: f"{m.group(1)}<{len(m.group(0)) - len(m.group(1))} chars>", value)
        return f"<{len(value)} chars>" if len(value) > RECORDED_STRING_CHARS else value
    if isinstance(value, list):
        return [_cut_long_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: _cut_long_strings(item) for key, item in value.items()}
    return value


def _flag_random(data: bytes, role: str) -> bytes:
    try:
        body = json.loads(data)
    except ValueError:
        return data
    if isinstance(body, dict):
        if role == "intent_keywords" and "intent" not in body:
            return data  # keywords-only: the REAL all-MiniLM-L6-v2 answered
        body["random_weights"] = True
    elif isinstance(body, list):
        for item in body:
            if isinstance(item, dict):
                item["random_weights"] = True
    return json.dumps(body, ensure_ascii=False).encode()


RUNTIME = Runtime()
READY = threading.Event()
_PATH = re.compile(r"^/endpoints/([^/]+)/invocations/?$")


class RuntimeHandler(Handler):
    def do_GET(self) -> None:
        if self.path == "/ping":
            return self.send(200 if READY.is_set() else 503, {"ready": READY.is_set()})
        if self.path == "/_admin/endpoints":
            return self.send(
                200,
                {
                    name: {
                        "role": e.role,
                        "random_weights": e.random_weights,
                        "model": e.model,
                        "inference_component": e.inference_component,
                    }
                    for name, e in RUNTIME.endpoints.items()
                },
            )
        if self.path == "/_admin/stats":
            return self.send(200, {name: dict(e.stats) for name, e in RUNTIME.endpoints.items()})
        if self.path == "/_admin/requests":
            with RUNTIME.lock:
                return self.send(200, {name: list(e.recent) for name, e in RUNTIME.endpoints.items()})
        if self.path == "/_admin/faults":
            return self.send(200, {name: [vars(f) for f in e.faults] for name, e in RUNTIME.endpoints.items()})
        return self.send(404, {"message": "not found"})

    def do_DELETE(self) -> None:
        self.read_body()
        if self.path in ("/_admin/faults", "/_admin/latency"):
            with RUNTIME.lock:
                for endpoint in RUNTIME.endpoints.values():
                    if self.path == "/_admin/faults":
                        endpoint.faults.clear()
                    else:
                        endpoint.fixed_ms = endpoint.answer_after_ms = 0.0
            return self.send(200, {"ok": True})
        return self.send(404, {"message": "not found"})

    def do_POST(self) -> None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if match:
            return self._invoke(match.group(1))
        if self.path.startswith("/_admin/"):
            return self._admin()
        self.read_body()
        return self.send(404, {"message": "not found"})

    def _admin(self) -> None:
        try:
            request = json.loads(self.read_body() or b"{}")
        except ValueError:
            return self.send(400, {"message": "body must be JSON"})
        if self.path == "/_admin/reset":
            with RUNTIME.lock:
                for endpoint in RUNTIME.endpoints.values():
                    endpoint.faults.clear()
                    endpoint.fixed_ms = endpoint.answer_after_ms = 0.0
                    endpoint.stats.clear()
                    endpoint.recent.clear()
            return self.send(200, {"ok": True})
        try:
            endpoint = RUNTIME.find(str(request.get("endpoint", "")))
        except KeyError:
            return self.send(404, {"message": f"no endpoint or role {request.get('endpoint')!r}"})
        if self.path == "/_admin/faults":
            kind = request.get("kind")
            if kind not in FAULT_KINDS:
                return self.send(400, {"message": f"kind must be one of {', '.join(FAULT_KINDS)}"})
            count = request.get("count", 1)
            fault = Fault(
                kind=kind,
                remaining=-1 if count in (None, -1) else int(count),
                status=int(request.get("status") or (500 if kind == "container_error" else 0) or 500),
                body=request.get("body"),
                delay_ms=float(request.get("delay_ms") or 0),
            )
            if fault.remaining == 0:
                return self.send(400, {"message": "count must be >= 1 (or -1 for every invocation)"})
            with RUNTIME.lock:
                endpoint.faults.append(fault)
            log.info("fault injected on %s: %s", endpoint.name, vars(fault))
            return self.send(200, {"endpoint": endpoint.name, "faults": [vars(f) for f in endpoint.faults]})
        if self.path == "/_admin/latency":
            with RUNTIME.lock:
                endpoint.fixed_ms = float(request.get("fixed_ms") or 0)
                endpoint.answer_after_ms = float(request.get("answer_after_ms") or 0)
            log.info(
                "latency on %s: fixed %.0f ms, answer after %.0f ms",
                endpoint.name,
                endpoint.fixed_ms,
                endpoint.answer_after_ms,
            )
            return self.send(
                200,
                {"endpoint": endpoint.name, "fixed_ms": endpoint.fixed_ms, "answer_after_ms": endpoint.answer_after_ms},
            )
        return self.send(404, {"message": "not found"})

    def _error(self, error: SageMakerError) -> None:
        body = {"message": error.message, **error.extra}
        self.send(
            error.status,
            body,
            headers={"x-amzn-ErrorType": f"{error.code}:", "x-amzn-RequestId": self.rid},
            content_type="application/json",
        )

    def _invoke(self, name: str) -> None:
        self.rid = str(uuid.uuid4())
        started = time.monotonic()
        body = self.read_body(MAX_PAYLOAD_BYTES)
        endpoint = RUNTIME.endpoints.get(name) if READY.is_set() else None
        if endpoint is not None:
            with RUNTIME.lock:
                endpoint.count("invocations")
                if body is not None:
                    endpoint.record(body, self.headers)
        outcome = "ok"
        try:
            if body is None:
                raise SageMakerError(
                    "ValidationError", 400, "Request payload size exceeds the 6 MB limit of real-time inference."
                )
            if endpoint is None:
                raise SageMakerError("ValidationError", 400, f"Endpoint {name} of account {ACCOUNT} not found.")
            component = self.headers.get("X-Amzn-SageMaker-Inference-Component")
            if component and component != endpoint.inference_component:
                raise SageMakerError("ValidationError", 400, f"Inference Component {component} not found.")
            content_type = self.headers.get("Content-Type") or "application/octet-stream"
            status, response_type, data = RUNTIME.invoke(endpoint, body, content_type, dict(self.headers.items()))
        except SageMakerError as error:
            outcome = (
                error.code if error.code != "ModelError" else f"ModelError{error.extra.get('OriginalStatusCode', '')}"
            )
            if endpoint is not None:
                with RUNTIME.lock:
                    endpoint.count(outcome)
            log.info("POST %s %s %s %.0f ms", name, error.status, outcome, (time.monotonic() - started) * 1000)
            return self._error(error)
        except ConnectionResetError:
            if endpoint is not None:
                with RUNTIME.lock:
                    endpoint.count("connection_reset")
            self.close_connection = True
            return None
        except Exception:
            log.exception("invocation of %s failed", name)
            if endpoint is not None:
                with RUNTIME.lock:
                    endpoint.count("InternalFailure")
            return self._error(SageMakerError("InternalFailure", 500, "An internal error occurred."))
        with RUNTIME.lock:
            endpoint.count(outcome)
        log.info("POST %s 200 %.0f ms", name, (time.monotonic() - started) * 1000)
        headers = {"x-Amzn-Invoked-Production-Variant": "AllTraffic", "x-amzn-RequestId": self.rid}
        if self.headers.get("X-Amzn-SageMaker-Custom-Attributes"):
            headers["X-Amzn-SageMaker-Custom-Attributes"] = self.headers["X-Amzn-SageMaker-Custom-Attributes"]
        return self.send(status, data, headers=headers, content_type=response_type)


def load(config: dict, log_dir: Path) -> None:
    """Build the endpoints of `config` (written by local.up): {"endpoints": [{"name", "role", "weights"?, ...}]}."""
    import torch

    from local import model_weights

    torch.set_num_threads(int(config.get("torch_threads", 1)))
    endpoints = config["endpoints"]
    asr = next((e for e in endpoints if e["role"] == "asr"), None)
    if asr is not None:  # the container starts in the background while the DJL packages load
        weights = model_weights.prepare("asr", asr.get("weights"))
        assert weights.model_dir is not None and weights.model_id is not None  # prepare("asr") sets both
        RUNTIME.whisper = WhisperBackend(weights.model_dir, weights.model_id, log_dir)
        RUNTIME.endpoints[asr["name"]] = Endpoint(
            asr["name"], "asr", RUNTIME.whisper, weights.random, asr.get("inference_component"), weights.model_id
        )
    for spec in endpoints:
        role = spec["role"]
        if role == "asr":
            continue
        if role in ("vlm", "llm"):
            tgi = TgiBackend(role)
            RUNTIME.endpoints[spec["name"]] = Endpoint(
                spec["name"], role, tgi, True, spec.get("inference_component"), tgi.stand_in.model_id
            )
            continue
        weights = model_weights.prepare(role, spec.get("weights"))
        backend = DjlBackend(role, weights.properties)
        model = weights.properties.get("model_name") or weights.properties.get("clip_model_name")
        RUNTIME.endpoints[spec["name"]] = Endpoint(
            spec["name"], role, backend, weights.random, spec.get("inference_component"), model
        )
    if RUNTIME.whisper is not None:
        RUNTIME.whisper.wait_ready()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    args = parser.parse_args()
    setup_logging("sagemaker")
    die_with_parent()
    started = time.monotonic()
    # serve first (/ping answers 503 while the models load): a taken port fails at once. The models load on the
    # main thread: the Whisper server dies with the thread that started it (PR_SET_PDEATHSIG is per thread).
    server = Server(("127.0.0.1", args.port), RuntimeHandler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    log.info("SageMaker runtime listening on http://127.0.0.1:%d (loading the models)", args.port)
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()
        if not READY.is_set():
            raise SystemExit(1)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        try:
            load(json.loads(args.config.read_text()), args.log_dir)
        except Exception:
            log.exception("loading the models failed")
            sys.exit(1)
        for name, endpoint in RUNTIME.endpoints.items():
            what = (
                " (TGI STAND-IN: placeholder text, no model)"
                if endpoint.role in ("vlm", "llm")
                else " (RANDOM WEIGHTS: outputs are meaningless)"
                if endpoint.random_weights
                else ""
            )
            log.info("endpoint %s: role %s, model %s%s", name, endpoint.role, endpoint.model, what)
        log.info("models ready in %.1f s", time.monotonic() - started)
        READY.set()
        stop.wait()
        log.info("SageMaker runtime shutting down")
        server.shutdown()
    finally:
        if RUNTIME.whisper is not None:
            RUNTIME.whisper.stop()


if __name__ == "__main__":
    main()
