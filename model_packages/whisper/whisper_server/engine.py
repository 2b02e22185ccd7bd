"""The model: loaded once at start-up, then shared by every request thread.

Capacity: CTranslate2 runs up to WHISPER_NUM_WORKERS transcriptions at once (one model replica each, `num_workers`);
a semaphore admits exactly that many, up to WHISPER_MAX_QUEUE more wait their turn, and any request beyond that is
answered 503 SERVER_BUSY at once (a transient error the caller retries) instead of queueing past SageMaker's 60 s
invocation timeout. Decoding and validation run outside the semaphore, in the request's own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE
from .errors import ApiError
from .options import Options, build_options
from .settings import Settings

log = logging.getLogger("whisper_server.engine")

SILENCE_PEAK = 1e-4  # -80 dBFS, below one step of 16-bit audio: digital silence is answered without the model
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")


class ModelLoadError(RuntimeError):
    """The model cannot be loaded: the container stops (SageMaker reports the endpoint as failed)."""


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: Any = None  # faster_whisper.WhisperModel, once load() ran
        self.languages: tuple[str, ...] = ()
        self.multilingual = False
        self.device = ""
        self.compute_type = ""
        self._ready = threading.Event()
        self._slots = threading.BoundedSemaphore(settings.num_workers)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.loads = 0

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def load(self) -> None:
        """Load the model (once). Raises ModelLoadError with a message for the operator."""
        if self._ready.is_set():
            return
        import ctranslate2
        from faster_whisper import WhisperModel

        started = time.perf_counter()
        source = resolve_model(self.settings.model)
        device = self.settings.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = self.settings.compute_type or ("float16" if device == "cuda" else "int8")
        try:
            model = WhisperModel(
                source,
                device=device,
                compute_type=compute_type,
                cpu_threads=self.settings.cpu_threads,
                num_workers=self.settings.num_workers,
            )
        except Exception as exc:  # CTranslate2 and the hub raise many types; the operator needs the message
            raise ModelLoadError(f"cannot load the Whisper model from {source!r} on {device}: {exc}") from exc
        n_mels = model.model.n_mels
        if model.feature_extractor.mel_filters.shape[0] != n_mels:
            raise ModelLoadError(
                f"the model expects {n_mels} Mel bins but the front end makes "
                f"{model.feature_extractor.mel_filters.shape[0]}: preprocessor_config.json is missing or wrong "
                f"(large-v3 class models need feature_size 128)"
            )
        self.model = model
        self.languages = tuple(model.supported_languages)
        self.multilingual = bool(model.model.is_multilingual)
        self.device, self.compute_type = device, compute_type
        self.loads += 1
        self._ready.set()
        log.info(
            "model loaded: id=%s source=%s device=%s compute_type=%s multilingual=%s n_mels=%d workers=%d in %.1f s",
            self.settings.model_id,
            source,
            device,
            compute_type,
            self.multilingual,
            n_mels,
            self.settings.num_workers,
            time.perf_counter() - started,
        )

    def options(self, raw: dict[str, Any]) -> Options:
        return build_options(raw, languages=self.languages, multilingual=self.multilingual)

    def transcribe(self, samples: np.ndarray, options: Options) -> dict[str, Any]:
        """Transcribe 16 kHz mono samples; returns the response object of the contract."""
        duration = samples.shape[0] / SAMPLE_RATE
        if samples.size == 0 or float(np.max(np.abs(samples))) < SILENCE_PEAK:
            return self._response(duration, None, None, [], options)
        limit = self.settings.num_workers + self.settings.max_queue
        with self._lock:
            if self._in_flight >= limit:
                raise ApiError("SERVER_BUSY", f"{self._in_flight} transcriptions are running or queued; retry later")
            self._in_flight += 1
        try:
            with self._slots:
                return self._run(samples, duration, options)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _run(self, samples: np.ndarray, duration: float, options: Options) -> dict[str, Any]:
        try:
            segments, info = self.model.transcribe(
                samples,
                language=options.language,
                task=options.task,
                beam_size=options.beam_size,
                vad_filter=options.vad_filter,
                word_timestamps=options.word_timestamps,
                temperature=list(self.settings.temperatures),
            )
            segments = list(segments)  # the generator does the decoding
        except ApiError:
            raise
        except Exception as exc:  # out of memory, a CTranslate2 fault: a 500 the caller may retry
            log.exception("transcription failed")
            raise ApiError("MODEL_FAILURE", f"transcription failed: {type(exc).__name__}") from exc
        return self._response(duration, info.language, info.language_probability, segments, options)

    def _response(
        self, duration: float, language: str | None, probability: float | None, segments, options: Options
    ) -> dict[str, Any]:
        out_segments = _segments(segments, duration, options.word_timestamps)
        if options.language is not None:
            language, probability = options.language, 1.0
        elif not out_segments:
            # No speech and no language asked for: a detected language would be a guess on noise or padding.
            language, probability = None, None
        return {
            "text": "".join(s["text_raw"] for s in out_segments).strip(),
            "language": language,
            "language_probability": None if probability is None else round(float(probability), 4),
            "duration": round(duration, 3),
            "segments": [{k: v for k, v in s.items() if k != "text_raw"} for s in out_segments],
            "task": options.task,  # "translate": `text` is English, `language` the spoken language
            "model": self.settings.model_id,
        }


def _segments(segments, duration: float, with_words: bool) -> list[dict[str, Any]]:
    """faster-whisper segments -> contract segments, times clamped to the audio.

    Whisper decodes 30 s windows; on a short clip's zero padding it can place timestamps past the end of the audio.
    A segment that starts at or after the end is dropped (there is no audio under it); other times are clamped
    to [0, duration].
    """
    out: list[dict[str, Any]] = []
    for segment in segments:
        start = max(0.0, float(segment.start))
        if start >= duration:
            continue
        end = min(max(float(segment.end), start), duration)
        item: dict[str, Any] = {
            "id": len(out),
            "start": round(start, 3),
            "end": round(end, 3),
            "text": segment.text.strip(),
            "text_raw": segment.text,
            "avg_logprob": round(float(segment.avg_logprob), 4),
            "no_speech_prob": round(float(segment.no_speech_prob), 4),
        }
        if with_words:
            words = []
            for word in segment.words or []:
                w_start = min(max(0.0, float(word.start)), duration)
                w_end = min(max(float(word.end), w_start), duration)
                words.append(
                    {
                        "start": round(w_start, 3),
                        "end": round(w_end, 3),
                        "word": word.word.strip(),
                        "probability": round(float(word.probability), 4),
                    }
                )
            item["words"] = words
        if not item["text"]:
            continue
        out.append(item)
    return out


def resolve_model(model: str) -> str:
    """A model directory (or the single subdirectory of one, as some model.tar.gz unpack), or a size name / hub id."""
    path = Path(model)
    looks_like_path = model.startswith(("/", ".", "~")) or path.exists()
    if not looks_like_path:
        return model  # a faster-whisper size name ("large-v3") or hub id: faster-whisper downloads it
    path = path.expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"model directory {model} does not exist (set MODEL_DIR, or WHISPER_MODEL for a hub id)")
    candidates = [path, *sorted(p for p in path.iterdir() if p.is_dir())]
    for candidate in candidates:
        if (candidate / "model.bin").is_file():
            missing = [name for name in REQUIRED_FILES if not (candidate / name).is_file()]
            if missing:
                raise ModelLoadError(
                    f"model directory {candidate} lacks {', '.join(missing)}: stage a converted faster-whisper "
                    "model (model.bin, config.json, vocabulary, tokenizer.json, preprocessor_config.json)"
                )
            return str(candidate)
    raise ModelLoadError(
        f"no model.bin in {path} or its subdirectories: stage a CTranslate2-converted Whisper model there"
    )
