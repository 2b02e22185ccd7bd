"""Fixtures for the Whisper container tests: a tiny random-weight model and the server running it over HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "model_packages" / "whisper"))

import whisper_testkit as kit
from tiny_whisper import cached_tiny_whisper

MAX_AUDIO_SECONDS = kit.TEST_MAX_AUDIO_SECONDS
MAX_AUDIO_BYTES = kit.TEST_MAX_AUDIO_BYTES


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """Built once (~30 s: torch + transformers + conversion), then reused from .local/tiny-models/."""
    return cached_tiny_whisper()


@pytest.fixture(scope="session")
def server(tiny_model, tmp_path_factory):
    """The container's entrypoint (`python -m whisper_server serve`) on 127.0.0.1, small limits for the tests."""
    log = tmp_path_factory.mktemp("whisper-server") / "server.log"
    srv = kit.WhisperServer(
        tiny_model,
        log,
        MODEL_ID="tiny-random-whisper",
        MAX_AUDIO_SECONDS=str(MAX_AUDIO_SECONDS),
        MAX_AUDIO_BYTES=str(MAX_AUDIO_BYTES),
        # One intra-op thread: the test runner has 2 cores, shared with the test process and other suites.
        WHISPER_CPU_THREADS="1",
        # No temperature fallback: random weights fail the log-prob check on every window, and the sampled retries
        # would make the (garbage) output differ from run to run. The default schedule: test_startup.py.
        WHISPER_TEMPERATURES="0",
        WHISPER_NUM_WORKERS="1",
    )
    srv.start()
    yield srv
    srv.stop()
