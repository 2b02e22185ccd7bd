"""Helpers for the Whisper container tests and benchmark: synthetic audio, encoders, and a server launcher.

- `speechlike()`: a voiced, formant-shaped, syllable-modulated signal that Silero VAD (faster-whisper's vad_filter)
  classifies as speech, so the default request path (VAD on) reaches the model. Pure tones and white noise do not.
- `encode()`: samples -> WAV / FLAC / Ogg Vorbis (soundfile) or MP3 / WebM Opus / Ogg Opus (PyAV) bytes.
- `WhisperServer`: runs `python -m whisper_server serve` as a subprocess on a free port (the server binds port 0
  and logs the port it got), waits for /ping, and keeps its log in a file.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

from local.common import stop_process

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = ROOT / "model_packages" / "whisper"
SAMPLE_RATE = 16000
TEST_MAX_AUDIO_SECONDS = 60  # the limits the test server runs with (tests/models/whisper/conftest.py)
TEST_MAX_AUDIO_BYTES = 2_000_000

_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (640, 1190, 2390))


def speechlike(seconds: float, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthetic 'speech': a gliding 90-135 Hz voice source, vowel formants every 250 ms, 4 syllables/s, pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 110 + 25 * np.sin(2 * np.pi * 0.5 * t + seed) + 10 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    source = sum(np.sin(k * phase) / k**1.2 for k in range(1, 40))
    out = np.zeros(n)
    step = int(0.25 * sample_rate)
    for start in range(0, n, step):
        chunk = source[start : start + step]
        formants = _VOWELS[rng.integers(len(_VOWELS))]
        spectrum = np.fft.rfft(chunk)
        freqs = np.fft.rfftfreq(len(chunk), 1 / sample_rate)
        gain = sum(1 / (1 + ((freqs - f) / (80 + 0.05 * f)) ** 2) for f in formants)
        out[start : start + len(chunk)] = np.fft.irfft(spectrum * gain, len(chunk))
    envelope = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 0.6 * (np.sin(2 * np.pi * 0.25 * t + seed) > -0.7)
    x = out * envelope + 0.003 * rng.standard_normal(n)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def silence(seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(int(seconds * sample_rate), dtype=np.float32)


def encode(samples: np.ndarray, fmt: str, sample_rate: int = SAMPLE_RATE) -> bytes:
    """fmt: wav | flac | ogg (Vorbis) | mp3 | webm (Opus) | opus (Ogg Opus)."""
    if fmt in ("wav", "flac", "ogg"):
        import soundfile as sf

        buffer = io.BytesIO()
        subtype = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS"}[fmt]
        channels = 1 if samples.ndim == 1 else samples.shape[1]
        with sf.SoundFile(buffer, "w", sample_rate, channels, subtype, format=fmt.upper()) as out:
            # In blocks: libsndfile's Vorbis encoder crashes on one very long write (minutes of audio).
            for start in range(0, len(samples), 10 * sample_rate):
                out.write(samples[start : start + 10 * sample_rate])
        return buffer.getvalue()
    codec, container_format, rate = {
        "mp3": ("libmp3lame", "mp3", sample_rate),
        "webm": ("libopus", "webm", 48000),
        "opus": ("libopus", "ogg", 48000),
    }[fmt]
    return _encode_av(samples, sample_rate, codec, container_format, rate)


def _encode_av(samples: np.ndarray, sample_rate: int, codec: str, container_format: str, rate: int) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        resampler = av.audio.resampler.AudioResampler(
            format=stream.codec_context.format or "s16", layout="mono", rate=rate
        )
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for resampled in list(resampler.resample(frame)) + list(resampler.resample(None)):
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _die_with_parent() -> None:
    """Linux: SIGTERM the server if the test process dies without its fixture teardown (a crash, a kill)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class WhisperServer:
    """`python -m whisper_server serve` in a subprocess, on 127.0.0.1 and a port the OS picks."""

    def __init__(self, model_dir: Path | str, log_path: Path | str, **env: str) -> None:
        self.model_dir = str(model_dir)
        self.log_path = Path(log_path)
        self.env = env
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> WhisperServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISPER_", "MAX_AUDIO_", "MODEL_"))}
        env.update(
            PYTHONPATH=str(PACKAGE_DIR),
            MODEL_DIR=self.model_dir,
            SAGEMAKER_BIND_TO_PORT="0",
            WHISPER_HOST="127.0.0.1",
            HF_HUB_OFFLINE="1",
        )
        env.update(self.env)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (the server's log while it runs: stop() closes it)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "whisper_server", "serve"],
            cwd=PACKAGE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        port = None
        while port is None:
            if self.process.poll() is not None:
                raise RuntimeError(f"whisper_server exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"whisper_server did not start listening:\n{self.log()}")
            match = re.search(r"listening on [\d.]+:(\d+)", self.log())
            if match:
                port = int(match.group(1))
            else:
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"whisper_server did not become ready:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        status = stop_process(self.process) if self.process is not None else None
        if getattr(self, "_log", None):
            self._log.close()
        return status

    def __enter__(self) -> WhisperServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
