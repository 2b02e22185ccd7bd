# venv: models
"""Real-time factor of the Whisper container: processing time / audio duration, over HTTP, median of several clips.

Starts the container entrypoint (`python -m whisper_server serve`) as a subprocess with the tiny random-weight model
(tests/models/tiny_whisper.py, built once and cached) on CPU with the image's default settings, sends 10-30 s clips
of synthetic speech (WAV, FLAC, MP3, WebM/Opus) with the default options (VAD on, beam 5), and times each request
from the client. The tiny model makes this a measure of the container's own pipeline (HTTP, decoding, resampling,
VAD, log-Mel features, a 2+2-layer encoder/decoder), not of large-v3 on a GPU: compare runs of this script with each
other. Last line: whisper_real_time_factor=<median>. Runs in well under 2 minutes on 2 cores.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "models"), str(ROOT / "tests" / "models" / "whisper")]

import requests  # noqa: E402 (after the sys.path set-up)
import whisper_testkit as kit  # noqa: E402 (after the sys.path set-up)
from tiny_whisper import cached_tiny_whisper  # noqa: E402 (after the sys.path set-up)

CLIPS = [
    (10.0, "wav"),
    (15.0, "flac"),
    (20.0, "mp3"),
    (25.0, "webm"),
    (30.0, "wav"),
    (12.0, "mp3"),
    (18.0, "flac"),
    (28.0, "webm"),
    (22.0, "wav"),
    (30.0, "mp3"),
]
CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "webm": "audio/webm"}
ROUNDS = 2


def main() -> None:
    started = time.perf_counter()
    model = cached_tiny_whisper()
    bodies = [
        (seconds, fmt, kit.encode(kit.speechlike(seconds, seed=i), fmt)) for i, (seconds, fmt) in enumerate(CLIPS)
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        kit.WhisperServer(model, Path(tmp) / "server.log", MODEL_ID="tiny-random-whisper") as server,
    ):
        session = requests.Session()

        def send(body: bytes, fmt: str) -> tuple[float, dict]:
            t0 = time.perf_counter()
            response = session.post(
                server.url + "/invocations", data=body, headers={"Content-Type": CONTENT_TYPES[fmt]}, timeout=120
            )
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                sys.exit(f"request failed: {response.status_code} {response.text}")
            return elapsed, response.json()

        send(bodies[0][2], bodies[0][1])  # warm-up: first-call allocations, VAD session
        ratios: list[float] = []
        print(f"{'clip':>4} {'format':>6} {'audio s':>8} {'time s':>7} {'RTF':>7} {'segments':>8}")
        for round_ in range(ROUNDS):
            for i, (seconds, fmt, body) in enumerate(bodies):
                elapsed, result = send(body, fmt)
                assert abs(result["duration"] - seconds) < 0.1, result["duration"]
                ratios.append(elapsed / seconds)
                if round_ == 0:
                    print(
                        f"{i:>4} {fmt:>6} {seconds:>8.1f} {elapsed:>7.3f} {elapsed / seconds:>7.4f} "
                        f"{len(result['segments']):>8}"
                    )
        audio_total = ROUNDS * sum(seconds for seconds, _, _ in bodies)
    median = statistics.median(ratios)
    p90 = statistics.quantiles(ratios, n=10)[-1]
    print(
        f"requests: {len(ratios)}  audio: {audio_total:.0f} s  RTF median {median:.4f}  p90 {p90:.4f}  "
        f"(~{1 / median:.0f}x real time)  wall: {time.perf_counter() - started:.1f} s"
    )
    print("model: tiny random-weight Whisper (d_model 64, 2+2 layers, 128 Mel bins), CPU int8, default options")
    print(f"whisper_real_time_factor={median:.5f}")


if __name__ == "__main__":
    main()
