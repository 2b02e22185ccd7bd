"""Container settings, read once from the environment at start-up (docs/whisper-container.md lists them).

A bad value stops the container at start-up with a message naming the variable, instead of failing requests later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (in the container: SageMaker calls the server from outside it)
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # faster-whisper's (openai-whisper's) fallback schedule


class SettingsError(ValueError):
    """An environment variable has a value the container cannot run with."""


@dataclass(frozen=True)
class Settings:
    model: str  # a converted model directory, or (WHISPER_MODEL) a faster-whisper size name / hub id
    model_id: str  # what responses report as "model"
    host: str
    port: int
    device: str  # "auto" | "cuda" | "cpu"
    compute_type: str | None  # None: float16 on cuda, int8 on cpu
    cpu_threads: int
    num_workers: int  # transcriptions that run at once
    max_queue: int  # transcriptions that may wait for a worker before the container answers 503
    max_audio_bytes: int
    max_audio_seconds: float
    temperatures: tuple[float, ...]  # decoding temperatures, tried in order while a window fails the quality checks
    request_timeout: float  # seconds a client may take to send a request
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        hub_model = env.get("WHISPER_MODEL", "").strip()
        model = hub_model or env.get("MODEL_DIR", "").strip() or "/opt/ml/model"
        model_id = env.get("MODEL_ID", "").strip() or hub_model or _name_of(model)
        device = env.get("WHISPER_DEVICE", "auto").strip().lower() or "auto"
        if device not in ("auto", "cuda", "cpu"):
            raise SettingsError(f"WHISPER_DEVICE must be auto, cuda or cpu, not {device!r}")
        return cls(
            model=model,
            model_id=model_id,
            host=env.get("WHISPER_HOST", ALL_INTERFACES).strip() or ALL_INTERFACES,
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", 8080, 0, 65535),
            device=device,
            compute_type=env.get("WHISPER_COMPUTE_TYPE", "").strip() or None,
            cpu_threads=_int(env, "WHISPER_CPU_THREADS", os.cpu_count() or 1, 0, 1024),
            num_workers=_int(env, "WHISPER_NUM_WORKERS", 1, 1, 64),
            max_queue=_int(env, "WHISPER_MAX_QUEUE", 32, 0, 100_000),
            max_audio_bytes=_int(env, "MAX_AUDIO_BYTES", 25 * 1024 * 1024, 1, 2**40),
            max_audio_seconds=_float(env, "MAX_AUDIO_SECONDS", 600.0, 0.1, 86_400.0),
            temperatures=_temperatures(env.get("WHISPER_TEMPERATURES", "")),
            request_timeout=_float(env, "WHISPER_REQUEST_TIMEOUT", 120.0, 1.0, 3600.0),
            log_level=(env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"),
        )


def _name_of(model: str) -> str:
    """A readable model id for a directory: its own name, or its parent's when it is SageMaker's `/opt/ml/model`."""
    path = Path(model)
    if path.name == "model" and path.parent.name == "ml":
        return "whisper"  # set MODEL_ID to report the real one
    return path.name or model


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return _number(env, name, default, low, high, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    return _number(env, name, default, low, high, float, "a number")


def _number(env: Mapping[str, str], name: str, default: N, low: N, high: N, parse: Callable[[str], N], kind: str) -> N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {kind}, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _temperatures(raw: str) -> tuple[float, ...]:
    """ "0" turns the fallback off (bounded latency, deterministic output); the default is faster-whisper's."""
    raw = raw.strip()
    if not raw:
        return DEFAULT_TEMPERATURES
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise SettingsError(f"WHISPER_TEMPERATURES must be comma-separated numbers, not {raw!r}") from None
    if not all(0.0 <= t <= 1.0 for t in values) or list(values) != sorted(set(values)):
        raise SettingsError(f"WHISPER_TEMPERATURES must be increasing numbers from 0 to 1, not {raw!r}")
    return values
