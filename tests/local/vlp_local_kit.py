"""Helpers of the local end-to-end tests (a unique module name: test folders share sys.path): an HTTP client of
the local API, media builders, the SageMaker runtime's fault/latency admin routes, and a second API process in
another auth mode."""

from __future__ import annotations

import io
import json
import math
import os
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from vlp_media import pcm_wav  # tests/unit/lambdas: the test media both batteries use

from local.common import ROOT, free_port, stop_process
from local.up import LocalService

TIMEOUT = 180
# The understand function's SageMaker read timeout in the test stack (conftest), lower than the deployed 20 s so the
# slow-model test takes seconds (every other function keeps the synthesized value).
READ_TIMEOUT_SECONDS = 5


def image_bytes(
    size: tuple[int, int] = (320, 240),
    fmt: str = "JPEG",
    color: tuple[int, int, int] = (200, 40, 40),
    quality: int = 90,
) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(30, 120, 220))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def speech_wav(seconds: float = 2.0, rate: int = 16000) -> bytes:
    """A voiced, syllable-modulated signal (what Silero VAD takes for speech) as 16-bit mono WAV."""
    frames = bytearray()
    formants = (730, 1090, 2440)
    for i in range(int(seconds * rate)):
        t = i / rate
        f0 = 110 + 25 * math.sin(2 * math.pi * 0.5 * t)
        voice = sum(math.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 12))
        voice += sum(0.3 * math.sin(2 * math.pi * f * t) for f in formants)
        envelope = max(0.0, math.sin(2 * math.pi * 2 * t)) ** 0.6
        frames += struct.pack("<h", int(max(-1.0, min(1.0, 0.12 * voice * envelope)) * 32767))
    return pcm_wav(bytes(frames), rate)


@dataclass
class Api:
    base: str
    session: requests.Session

    @classmethod
    def at(cls, base: str) -> Api:
        return cls(base, requests.Session())

    def post(self, path: str, body: Any = None, *, raw: bytes | None = None, **kwargs: Any) -> requests.Response:
        if raw is not None:
            kwargs.setdefault("headers", {"Content-Type": "application/json"})
            return self.session.post(self.base + path, data=raw, timeout=TIMEOUT, **kwargs)
        return self.session.post(self.base + path, json=body, timeout=TIMEOUT, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=TIMEOUT, **kwargs)

    def presign(self, kind: str, content_type: str) -> dict:
        response = self.post("/v1/uploads", {"kind": kind, "content_type": content_type})
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, data: bytes, *, kind: str = "image", content_type: str = "image/jpeg") -> str:
        """POST /v1/uploads, then the presigned POST form; returns the key."""
        post = self.presign(kind, content_type)
        response = requests.post(
            post["url"], data=post["fields"], files={"file": ("upload", data, content_type)}, timeout=TIMEOUT
        )
        assert response.status_code == 204, response.text
        return post["key"]

    def analyze(self, body: dict) -> requests.Response:
        return self.post("/v1/analyze", body)

    def submit(self, body: dict) -> str:
        response = self.post("/v1/jobs", body)
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    def wait_job(self, job_id: str, timeout: float = 120.0) -> tuple[dict, list[str]]:
        """(final view, every status seen)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(f"/v1/jobs/{job_id}")
            assert response.status_code == 200, response.text
            view = response.json()
            if not seen or seen[-1] != view["status"]:
                seen.append(view["status"])
            if view["status"] in ("succeeded", "failed"):
                return view, seen
            assert time.monotonic() < deadline, f"job {job_id} still {view['status']}"
            time.sleep(0.1)


@dataclass
class Models:
    """The local SageMaker runtime's admin routes."""

    base: str

    def fault(self, endpoint: str, kind: str, count: int = 1, **extra: Any) -> None:
        response = requests.post(
            self.base + "/_admin/faults", json={"endpoint": endpoint, "kind": kind, "count": count, **extra}, timeout=10
        )
        assert response.status_code == 200, response.text

    def model_error(self, endpoint: str, status: int, code: str, message: str, count: int = 1) -> None:
        """The endpoint's container answers `status` with a model package's error document (code and message)."""
        self.fault(
            endpoint, "container_error", count, status=status, body={"error": {"code": code, "message": message}}
        )

    def latency(self, endpoint: str, *, fixed_ms: float = 0, answer_after_ms: float = 0) -> None:
        response = requests.post(
            self.base + "/_admin/latency",
            json={"endpoint": endpoint, "fixed_ms": fixed_ms, "answer_after_ms": answer_after_ms},
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def reset(self) -> None:
        assert requests.post(self.base + "/_admin/reset", json={}, timeout=10).status_code == 200

    def stats(self) -> dict[str, dict[str, int]]:
        return requests.get(self.base + "/_admin/stats", timeout=10).json()

    def endpoints(self) -> dict[str, dict]:
        return requests.get(self.base + "/_admin/endpoints", timeout=10).json()

    def invocations(self, role: str) -> int:
        name = next(n for n, e in self.endpoints().items() if e["role"] == role)
        return self.stats().get(name, {}).get("invocations", 0)

    def requests(self, role: str) -> list[dict]:
        """What the role's endpoint received lately, oldest first: {"content_type", "custom_attributes", "bytes",
        "json"} (the JSON body, a data URI's base64 and strings above 20,000 characters cut to "<N chars>"; null
        for audio)."""
        name = next(n for n, e in self.endpoints().items() if e["role"] == role)
        return requests.get(self.base + "/_admin/requests", timeout=10).json()[name]


def error_of(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    return error


def json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class ApiProcess:
    """A second API process (another auth mode: `iam`, `api_key`) over a running stack's Lambda service, started
    with the command local.up builds for it (LocalService.api_command, which also writes run/credentials.json, the
    credentials `make up` prints). `prepare(credentials_file)` may rewrite that file before the process reads it.
    run/state.json is written as `make up` leaves it, so `vlp` finds this API and its auth without --api-url."""

    def __init__(
        self,
        stack: LocalService,
        state_dir: Path,
        mode: str,
        *,
        api_keys: Path | None = None,
        prepare: Callable[[Path], None] | None = None,
    ) -> None:
        ports = dict(stack.ports, api=free_port())
        self.view = LocalService(env=stack.env, state_dir=state_dir, ports=ports, auth=mode, api_keys=api_keys)
        self.view.run_dir.mkdir(parents=True, exist_ok=True)
        command = self.view.api_command(stack.run_dir / "deployment.json")
        if prepare is not None:
            prepare(self.view.credentials_file)
        (self.view.run_dir / "state.json").write_text(json.dumps({"api_url": self.url, "ports": ports}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VLP_LOCAL"))}
        env.update(PYTHONPATH=str(ROOT), VLP_LOCAL_DIE_WITH_PARENT="1")
        self.log_path = state_dir / f"api-{mode}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                requests.get(self.url + "/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the API process did not start"
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return self.view.api_url

    @property
    def credentials(self) -> dict[str, Any]:
        return json.loads(self.view.credentials_file.read_text())

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()
