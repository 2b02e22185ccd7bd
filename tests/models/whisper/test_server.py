"""The Whisper container over HTTP: the SageMaker routes, the response contract, options, and bad input.

The model has random weights, so the text is garbage: these tests check structure, types, timings and errors,
never words. The server is the real entrypoint in a subprocess (see conftest.py).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading

import numpy as np
import pytest
import requests
import whisper_testkit as kit
from whisper_testkit import TEST_MAX_AUDIO_BYTES as MAX_AUDIO_BYTES
from whisper_testkit import TEST_MAX_AUDIO_SECONDS as MAX_AUDIO_SECONDS

CONTENT_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "webm": "audio/webm",
    "opus": "audio/ogg",
}
SPEECH = kit.speechlike(8.0)
SPEECH_WAV = kit.encode(SPEECH, "wav")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


def invoke(
    server,
    body: bytes,
    content_type: str = "audio/wav",
    attributes: str | None = None,
    session: requests.Session | None = None,
) -> requests.Response:
    headers = {"Content-Type": content_type}
    if attributes is not None:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
    return (session or requests).post(server.url + "/invocations", data=body, headers=headers, timeout=60)


def invoke_json(server, payload, **kwargs) -> requests.Response:
    return invoke(server, json.dumps(payload).encode(), "application/json", **kwargs)


def assert_transcript(
    result: dict, duration: float, *, words: bool = False, allow_empty: bool = False, task: str = "transcribe"
) -> None:
    assert set(result) == {"text", "language", "language_probability", "duration", "segments", "task", "model"}
    assert result["task"] == task
    assert result["model"] == "tiny-random-whisper"
    assert isinstance(result["text"], str) and result["text"] == result["text"].strip()
    assert result["duration"] == pytest.approx(duration, abs=0.1)
    assert isinstance(result["segments"], list)
    assert result["segments"] or allow_empty, "speech-like audio gives segments"
    assert LANGUAGE_CODE.match(result["language"])
    assert 0.0 <= result["language_probability"] <= 1.0
    previous_start = 0.0
    for index, segment in enumerate(result["segments"]):
        expected = {"id", "start", "end", "text", "avg_logprob", "no_speech_prob"} | ({"words"} if words else set())
        assert set(segment) == expected
        assert segment["id"] == index
        assert isinstance(segment["start"], float) and isinstance(segment["end"], float)
        assert previous_start <= segment["start"] <= segment["end"] <= result["duration"]
        previous_start = segment["start"]
        assert segment["text"] and segment["text"] == segment["text"].strip()
        assert segment["text"] in result["text"]
        assert segment["avg_logprob"] <= 0.0 and 0.0 <= segment["no_speech_prob"] <= 1.0
        for word in segment.get("words", []):
            assert set(word) == {"start", "end", "word", "probability"}
            assert 0.0 <= word["start"] <= word["end"] <= result["duration"]
            assert isinstance(word["word"], str) and 0.0 <= word["probability"] <= 1.0


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10


# -- routes -----------------------------------------------------------------------------------------------------------


def test_ping_is_healthy_once_loaded(server):
    response = requests.get(server.url + "/ping", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "model": "tiny-random-whisper"}


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("GET", "/invocations", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/ping", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/invocations", 405, "METHOD_NOT_ALLOWED"),
        ("OPTIONS", "/ping", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/nope", 404, "NOT_FOUND"),
        ("POST", "/v1/invocations", 404, "NOT_FOUND"),
    ],
)
def test_other_routes_and_methods(server, method, path, status, code):
    assert_error(requests.request(method, server.url + path, data=b"x" * 10, timeout=5), status, code)


# -- transcription ----------------------------------------------------------------------------------------------------


def test_wav_speech_gives_the_contract_shape(server):
    response = invoke(server, SPEECH_WAV)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert_transcript(response.json(), 8.0)


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3", "webm", "opus"])
def test_other_containers(server, fmt):
    response = invoke(server, kit.encode(kit.speechlike(5.0, seed=1), fmt), CONTENT_TYPES[fmt], "beam_size=1")
    assert response.status_code == 200, response.text
    assert_transcript(response.json(), 5.0)


def test_content_type_parameters_and_octet_stream(server):
    body = kit.encode(kit.speechlike(3.0, seed=2), "wav")
    assert invoke(server, body, "Audio/WAV; codecs=1", "beam_size=1").status_code == 200
    assert invoke(server, body, "application/octet-stream", "beam_size=1").status_code == 200


def test_stereo_44k_is_resampled(server):
    stereo = np.stack([kit.speechlike(4.0, seed=3, sample_rate=44100)] * 2, axis=1)
    response = invoke(server, kit.encode(stereo, "wav", sample_rate=44100), attributes="beam_size=1")
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(4.0, abs=0.01)


@pytest.mark.parametrize("attributes", [None, "vad_filter=false"])
def test_silence_gives_empty_text(server, attributes):
    response = invoke(server, kit.encode(kit.silence(3.0), "wav"), attributes=attributes)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "text": "",
        "language": None,
        "language_probability": None,
        "duration": 3.0,
        "segments": [],
        "task": "transcribe",
        "model": "tiny-random-whisper",
    }


def test_silence_keeps_a_requested_language(server):
    result = invoke(server, kit.encode(kit.silence(2.0), "flac"), attributes="language=de").json()
    assert (result["text"], result["segments"], result["language"], result["language_probability"]) == (
        "",
        [],
        "de",
        1.0,
    )


def test_low_noise_without_speech_is_filtered_by_vad(server):
    noise = (0.001 * np.random.default_rng(0).standard_normal(16000 * 3)).astype(np.float32)
    result = invoke(server, kit.encode(noise, "wav")).json()
    assert result["text"] == "" and result["segments"] == [] and result["language"] is None


def test_json_base64_form(server):
    payload = {
        "audio": base64.b64encode(SPEECH_WAV).decode(),
        "language": "en",
        "task": "transcribe",
        "vad_filter": True,
        "word_timestamps": False,
        "beam_size": 2,
    }
    response = invoke_json(server, payload)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_transcript(result, 8.0)
    assert (result["language"], result["language_probability"]) == ("en", 1.0)


def test_json_accepts_a_data_uri_and_line_breaks(server):
    encoded = base64.encodebytes(kit.encode(kit.speechlike(2.0), "flac")).decode()  # 76-column lines
    response = invoke_json(server, {"audio": "data:audio/flac;base64," + encoded, "beam_size": "1"})
    assert response.status_code == 200, response.text


def test_custom_attributes_options(server):
    response = invoke(
        server, SPEECH_WAV, attributes="language=fr; task=translate ;beam_size=3;vad_filter=false;trace-id=abc"
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert_transcript(result, 8.0, allow_empty=True, task="translate")  # random weights: may well give nothing
    assert result["language"] == "fr"


@pytest.mark.parametrize("form", ["header", "json"])
def test_translate_reports_the_task_and_the_spoken_language(server, form):
    """task=translate (what the pipeline's options.translate sends): the response says it translated, and
    `language` is the spoken language (here the one given), not English."""
    if form == "header":
        response = invoke(server, SPEECH_WAV, attributes="task=translate;language=de;beam_size=1")
    else:
        payload = {"audio": base64.b64encode(SPEECH_WAV).decode(), "task": "translate", "language": "de"}
        response = invoke_json(server, payload)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_transcript(result, 8.0, allow_empty=True, task="translate")  # random weights may decode nothing
    assert (result["language"], result["language_probability"]) == ("de", 1.0)


def test_translate_without_a_language_detects_it_as_transcribe_does(server):
    translated = invoke(server, SPEECH_WAV, attributes="task=translate;beam_size=1").json()
    transcribed = invoke(server, SPEECH_WAV, attributes="task=transcribe;beam_size=1").json()
    assert (translated["task"], transcribed["task"]) == ("translate", "transcribe")
    assert transcribed["segments"] and LANGUAGE_CODE.match(transcribed["language"])
    if translated["segments"]:  # the language detection is the same pass: the same spoken language
        assert translated["language"] == transcribed["language"]
    else:  # nothing decoded (random weights): no language is claimed, as for silence
        assert (translated["text"], translated["language"]) == ("", None)


def test_bcp47_language_tag(server):
    assert invoke(server, SPEECH_WAV, attributes="language=pt-BR;beam_size=1").json()["language"] == "pt"


def test_json_fields_win_over_the_header(server):
    payload = {"audio": base64.b64encode(SPEECH_WAV).decode(), "language": "de", "beam_size": 1}
    assert invoke_json(server, payload, attributes="language=fr").json()["language"] == "de"


def test_word_timestamps(server):
    response = invoke(server, SPEECH_WAV, attributes="word_timestamps=true")
    assert response.status_code == 200, response.text
    result = response.json()
    assert_transcript(result, 8.0, words=True)
    assert any(segment["words"] for segment in result["segments"])


def test_chunked_upload(server):
    chunks = (SPEECH_WAV[i : i + 50_000] for i in range(0, len(SPEECH_WAV), 50_000))
    response = requests.post(
        server.url + "/invocations",
        data=chunks,
        timeout=60,
        headers={"Content-Type": "audio/wav", "X-Amzn-SageMaker-Custom-Attributes": "beam_size=1"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(8.0)


def test_concurrent_requests_all_succeed(server):
    results: list[int] = []

    def call(seed: int) -> None:
        body = kit.encode(kit.speechlike(3.0, seed=seed), "wav")
        results.append(invoke(server, body, attributes="beam_size=1").status_code)

    threads = [threading.Thread(target=call, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 4


# -- bad input --------------------------------------------------------------------------------------------------------


def _wav_seconds(seconds: float) -> bytes:
    return kit.encode(kit.silence(seconds), "wav")


BAD_RAW = {
    "garbage bytes": (b"this is not audio at all " * 200, "audio/wav", None, 400, "UNDECODABLE_AUDIO"),
    "random bytes as mp3": (np.random.default_rng(7).bytes(20_000), "audio/mpeg", None, 400, "UNDECODABLE_AUDIO"),
    "wav cut inside the header": (SPEECH_WAV[:30], "audio/wav", None, 400, "UNDECODABLE_AUDIO"),
    "wav cut inside the data": (SPEECH_WAV[: len(SPEECH_WAV) // 2], "audio/wav", None, 400, "UNDECODABLE_AUDIO"),
    "flac cut short": (kit.encode(SPEECH, "flac")[:40_000], "audio/flac", None, 400, "UNDECODABLE_AUDIO"),
    "empty body": (b"", "audio/wav", None, 400, "UNDECODABLE_AUDIO"),
    "text/plain": (SPEECH_WAV, "text/plain", None, 415, "UNSUPPORTED_MEDIA_TYPE"),
    "image/png": (b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png", None, 415, "UNSUPPORTED_MEDIA_TYPE"),
    "no content type": (SPEECH_WAV, "", None, 415, "UNSUPPORTED_MEDIA_TYPE"),
    "too long wav (decoded)": (_wav_seconds(MAX_AUDIO_SECONDS + 0.5), "audio/wav", None, 413, "AUDIO_TOO_LONG"),
    "too long flac (header)": (
        kit.encode(kit.silence(3 * MAX_AUDIO_SECONDS), "flac"),
        "audio/flac",
        None,
        413,
        "AUDIO_TOO_LONG",
    ),
    "too long ogg (decoded)": (
        kit.encode(kit.silence(MAX_AUDIO_SECONDS + 5), "ogg"),
        "audio/ogg",
        None,
        413,
        "AUDIO_TOO_LONG",
    ),
    "too many bytes": (b"\0" * (MAX_AUDIO_BYTES + 1), "audio/wav", None, 413, "AUDIO_TOO_LARGE"),
    "beam_size 0": (SPEECH_WAV, "audio/wav", "beam_size=0", 400, "INVALID_OPTION"),
    "beam_size 11": (SPEECH_WAV, "audio/wav", "beam_size=11", 400, "INVALID_OPTION"),
    "beam_size text": (SPEECH_WAV, "audio/wav", "beam_size=five", 400, "INVALID_OPTION"),
    "unknown task": (SPEECH_WAV, "audio/wav", "task=summarize", 400, "INVALID_OPTION"),
    "unknown language": (SPEECH_WAV, "audio/wav", "language=xx", 400, "INVALID_OPTION"),
    "language name": (SPEECH_WAV, "audio/wav", "language=english", 400, "INVALID_OPTION"),
    "not a boolean": (SPEECH_WAV, "audio/wav", "vad_filter=maybe", 400, "INVALID_OPTION"),
    "option without value": (SPEECH_WAV, "audio/wav", "word_timestamps", 400, "INVALID_OPTION"),
}


@pytest.mark.parametrize("case", list(BAD_RAW), ids=list(BAD_RAW))
def test_bad_raw_requests(server, case):
    body, content_type, attributes, status, code = BAD_RAW[case]
    assert_error(invoke(server, body, content_type, attributes), status, code)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BAD_JSON = {
    "not json": (b"{not json", 400, "INVALID_JSON"),
    "not utf-8": (b"\xff\xfe{}", 400, "INVALID_JSON"),
    "a list": (b"[1, 2]", 400, "INVALID_REQUEST"),
    "no audio": (json.dumps({"language": "en"}).encode(), 400, "INVALID_REQUEST"),
    "audio not a string": (json.dumps({"audio": 123}).encode(), 400, "INVALID_REQUEST"),
    "audio not base64": (json.dumps({"audio": "%%%not base64%%%"}).encode(), 400, "INVALID_REQUEST"),
    "base64 of garbage": (json.dumps({"audio": _b64(b"garbage" * 100)}).encode(), 400, "UNDECODABLE_AUDIO"),
    "unknown field": (json.dumps({"audio": _b64(SPEECH_WAV), "langauge": "en"}).encode(), 400, "INVALID_OPTION"),
    "boolean beam_size": (json.dumps({"audio": _b64(SPEECH_WAV), "beam_size": True}).encode(), 400, "INVALID_OPTION"),
    "number as task": (json.dumps({"audio": _b64(SPEECH_WAV), "task": 1}).encode(), 400, "INVALID_OPTION"),
    "decoded audio too large": (
        json.dumps({"audio": _b64(b"\0" * (MAX_AUDIO_BYTES + 10))}).encode(),
        413,
        "AUDIO_TOO_LARGE",
    ),
    "body too large": (b'{"audio": "' + b"A" * (MAX_AUDIO_BYTES * 2) + b'"}', 413, "AUDIO_TOO_LARGE"),
}


@pytest.mark.parametrize("case", list(BAD_JSON), ids=list(BAD_JSON))
def test_bad_json_requests(server, case):
    body, status, code = BAD_JSON[case]
    assert_error(invoke(server, body, "application/json"), status, code)


def test_errors_keep_the_connection_usable(server):
    """Refused bodies are drained, so the next request on the same keep-alive connection is read correctly."""
    with requests.Session() as session:
        assert_error(invoke(server, SPEECH_WAV, "text/plain", session=session), 415, "UNSUPPORTED_MEDIA_TYPE")
        assert_error(invoke(server, b"\0" * (MAX_AUDIO_BYTES + 1), session=session), 413, "AUDIO_TOO_LARGE")
        assert_error(invoke(server, SPEECH_WAV, attributes="beam_size=99", session=session), 400, "INVALID_OPTION")
        response = invoke(server, SPEECH_WAV, attributes="beam_size=1", session=session)
        assert response.status_code == 200, response.text


def test_malformed_http_does_not_stop_the_server(server):
    host, port = server.url.removeprefix("http://").split(":")
    for raw in (
        b"GARBAGE\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nContent-Length: nope\r\nContent-Type: audio/wav\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            reply = sock.recv(65536)
        assert reply == b"" or reply.startswith(b"HTTP/1."), reply[:100]
        assert not reply.startswith(b"HTTP/1.1 5") and not reply.startswith(b"HTTP/1.0 5")
    assert requests.get(server.url + "/ping", timeout=5).status_code == 200


def test_server_still_serves_after_the_battery(server):
    assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    response = invoke(server, SPEECH_WAV)
    assert response.status_code == 200
    assert_transcript(response.json(), 8.0)


def test_zz_model_loaded_exactly_once_and_no_tracebacks(server):
    """Runs last in this module: every request above went through the one model loaded at start-up."""
    log = server.log()
    assert log.count("model loaded:") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert server.process.poll() is None
