"""In-process tests of the server's parts: options, settings, audio decoding, the engine's admission control,
and the HTTP server before its model has loaded. No model is loaded here (the engine is driven with a stub)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import requests
import whisper_testkit as kit
from whisper_server import audio
from whisper_server.engine import Engine, ModelLoadError, resolve_model
from whisper_server.errors import ApiError
from whisper_server.options import Options, build_options, parse_custom_attributes
from whisper_server.server import WhisperHTTPServer, _b64decode
from whisper_server.settings import Settings, SettingsError

LANGUAGES = ("en", "de", "fr", "pt", "haw", "yue")


# -- options ----------------------------------------------------------------------------------------------------------


def test_custom_attributes_parsing():
    assert parse_custom_attributes(None) == {}
    assert parse_custom_attributes(" Language=de ; Word-Timestamps=TRUE;;beam_size = 3; trace=abc; flag") == {
        "language": "de",
        "word_timestamps": "TRUE",
        "beam_size": "3",
    }
    with pytest.raises(ApiError) as err:
        parse_custom_attributes("vad_filter")
    assert err.value.code == "INVALID_OPTION"


def test_build_options_defaults_and_values():
    assert build_options({}, languages=LANGUAGES, multilingual=True) == Options(None, "transcribe", True, False, 5)
    options = build_options(
        {"language": "de-AT", "task": "Translate", "vad_filter": "off", "word_timestamps": True, "beam_size": "10"},
        languages=LANGUAGES,
        multilingual=True,
    )
    assert options == Options("de", "translate", False, True, 10)
    assert build_options({"language": "auto"}, languages=LANGUAGES, multilingual=True).language is None
    assert build_options({"language": "yue"}, languages=LANGUAGES, multilingual=True).language == "yue"


@pytest.mark.parametrize(
    "raw",
    [
        {"language": "xx"},
        {"language": 5},
        {"task": "summarize"},
        {"task": 3},
        {"vad_filter": "maybe"},
        {"vad_filter": 1.5},
        {"word_timestamps": []},
        {"beam_size": 0},
        {"beam_size": 11},
        {"beam_size": 2.5},
        {"beam_size": True},
        {"beam_size": "-1"},
    ],
)
def test_invalid_options(raw):
    with pytest.raises(ApiError) as err:
        build_options(raw, languages=LANGUAGES, multilingual=True)
    assert (err.value.status, err.value.code) == (400, "INVALID_OPTION")


def test_english_only_model_refuses_other_languages_and_translation():
    assert build_options({"language": "en"}, languages=("en",), multilingual=False).language == "en"
    for raw in ({"language": "de"}, {"task": "translate"}):
        with pytest.raises(ApiError, match="English-only"):
            build_options(raw, languages=("en",), multilingual=False)


def test_base64_forms():
    data = bytes(range(256))
    import base64

    assert _b64decode(base64.b64encode(data).decode()) == data
    assert _b64decode(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data
    assert _b64decode("data:audio/wav;base64," + base64.encodebytes(data).decode()) == data
    with pytest.raises(ApiError):
        _b64decode("not*base64")


# -- settings ---------------------------------------------------------------------------------------------------------


def test_settings_defaults():
    settings = Settings.from_env({})
    assert (settings.model, settings.port, settings.device, settings.compute_type) == (
        "/opt/ml/model",
        8080,
        "auto",
        None,
    )
    assert (settings.max_audio_seconds, settings.max_audio_bytes) == (600.0, 25 * 1024 * 1024)
    assert (settings.num_workers, settings.host) == (1, "0.0.0.0")
    assert settings.model_id == "whisper"  # /opt/ml/model says nothing: MODEL_ID names it
    assert settings.temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert Settings.from_env({"WHISPER_TEMPERATURES": "0"}).temperatures == (0.0,)
    assert Settings.from_env({"WHISPER_TEMPERATURES": "0, 0.5,1"}).temperatures == (0.0, 0.5, 1.0)


def test_settings_from_env():
    settings = Settings.from_env(
        {
            "MODEL_DIR": "/models/faster-whisper-large-v3",
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "WHISPER_DEVICE": "CPU",
            "WHISPER_COMPUTE_TYPE": "int8_float16",
            "MAX_AUDIO_SECONDS": "30.5",
            "WHISPER_NUM_WORKERS": "2",
        }
    )
    assert (settings.model, settings.model_id, settings.port, settings.device) == (
        "/models/faster-whisper-large-v3",
        "faster-whisper-large-v3",
        9000,
        "cpu",
    )
    assert (settings.compute_type, settings.max_audio_seconds, settings.num_workers) == ("int8_float16", 30.5, 2)
    hub = Settings.from_env({"WHISPER_MODEL": "large-v3", "MODEL_ID": "Systran/faster-whisper-large-v3"})
    assert (hub.model, hub.model_id) == ("large-v3", "Systran/faster-whisper-large-v3")


@pytest.mark.parametrize(
    "env",
    [
        {"SAGEMAKER_BIND_TO_PORT": "http"},
        {"SAGEMAKER_BIND_TO_PORT": "70000"},
        {"WHISPER_DEVICE": "tpu"},
        {"MAX_AUDIO_SECONDS": "-1"},
        {"MAX_AUDIO_BYTES": "1e9"},
        {"WHISPER_NUM_WORKERS": "0"},
        {"WHISPER_TEMPERATURES": "hot"},
        {"WHISPER_TEMPERATURES": "0.5,0"},
        {"WHISPER_TEMPERATURES": "2"},
    ],
)
def test_bad_settings(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)


# -- model directory --------------------------------------------------------------------------------------------------


def test_resolve_model(tmp_path, tiny_model):
    assert resolve_model(str(tiny_model)) == str(tiny_model)
    assert resolve_model("large-v3") == "large-v3"  # a size name goes to faster-whisper as is
    nested = tmp_path / "unpacked"
    (nested / "faster-whisper").mkdir(parents=True)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (nested / "faster-whisper" / name).write_bytes(b"")
    assert resolve_model(str(nested)) == str(nested / "faster-whisper")  # a tarball with a top folder
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match=r"no model\.bin"):
        resolve_model(str(tmp_path))
    (nested / "faster-whisper" / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json"):
        resolve_model(str(nested))


# -- audio ------------------------------------------------------------------------------------------------------------


def test_decode_resamples_and_mixes_down():
    stereo = np.stack([kit.speechlike(1.0, sample_rate=22050), np.zeros(22050, np.float32)], axis=1)
    samples = audio.decode(kit.encode(stereo, "wav", sample_rate=22050), max_seconds=10)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert samples.shape[0] == pytest.approx(16000, abs=2)


def test_streaming_wav_with_unknown_size_is_accepted():
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, kit.speechlike(1.0), 16000, format="WAV", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    data[40:44] = b"\xff\xff\xff\xff"  # the data chunk size a streaming writer leaves
    assert audio.decode(bytes(data), max_seconds=10).shape[0] == 16000


def test_decode_stops_early_on_long_audio():
    started = time.perf_counter()
    with pytest.raises(ApiError) as err:
        audio.decode(kit.encode(kit.silence(600.0), "ogg"), max_seconds=5)
    assert err.value.code == "AUDIO_TOO_LONG"
    assert time.perf_counter() - started < 5


# -- engine admission control (stub model) ----------------------------------------------------------------------------


class _BlockingEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.release = threading.Event()
        self.running = threading.Semaphore(0)
        self._ready.set()

    def _run(self, samples, duration, options):
        self.running.release()
        self.release.wait(10)
        return {"ok": True}


def test_engine_runs_num_workers_at_once_queues_max_queue_and_refuses_the_rest():
    settings = Settings.from_env({"WHISPER_NUM_WORKERS": "1", "WHISPER_MAX_QUEUE": "1"})
    engine = _BlockingEngine(settings)
    speech = kit.speechlike(0.5)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(engine.transcribe(speech, Options()))) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert engine.running.acquire(timeout=5)  # one runs, one waits
    assert not engine.running.acquire(timeout=0.2)
    with pytest.raises(ApiError) as err:
        engine.transcribe(speech, Options())
    assert (err.value.status, err.value.code) == (503, "SERVER_BUSY")
    engine.release.set()
    for thread in threads:
        thread.join(10)
    assert results == [{"ok": True}, {"ok": True}]


def test_engine_answers_digital_silence_without_the_model():
    engine = _BlockingEngine(Settings.from_env({}))
    result = engine.transcribe(np.zeros(8000, np.float32), Options())
    assert result["segments"] == [] and result["text"] == "" and result["duration"] == 0.5
    assert engine.running.acquire(timeout=0) is False


# -- the HTTP server before the model is loaded -----------------------------------------------------------------------


def test_ping_and_invocations_answer_503_while_the_model_loads():
    settings = Settings.from_env({"WHISPER_HOST": "127.0.0.1", "SAGEMAKER_BIND_TO_PORT": "0"})
    server = WhisperHTTPServer(settings, Engine(settings))  # never loaded
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        ping = requests.get(url + "/ping", timeout=5)
        assert ping.status_code == 503 and ping.json()["status"] == "loading"
        response = requests.post(url + "/invocations", data=b"RIFF", headers={"Content-Type": "audio/wav"}, timeout=5)
        assert response.status_code == 503 and response.json()["error"]["code"] == "MODEL_NOT_READY"
    finally:
        server.shutdown()
        server.server_close()
