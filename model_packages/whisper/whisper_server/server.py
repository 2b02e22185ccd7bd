"""The HTTP side of the SageMaker inference container contract: `GET /ping`, `POST /invocations`.

Stack: the standard library's ThreadingHTTPServer (HTTP/1.1 keep-alive, one thread per connection). It needs no
extra dependency, and the work per request is a long, GIL-releasing model call, so an async stack would buy nothing;
the engine bounds how many transcriptions run at once. The socket listens before the model is loaded, so /ping can
answer 503 while it loads and 200 once it has; a model that cannot load stops the process with status 1.

Every answer is JSON. Errors are `{"error": {"code", "message"}}` with a 4xx for the caller's mistakes and a 5xx
for ours; no request, however malformed, stops the server or leaves a connection with unread body bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from vlp_hub_token import HubTokenError, load_hub_token

from . import __version__, audio
from .engine import Engine
from .errors import ApiError
from .options import OPTION_NAMES, parse_custom_attributes
from .settings import Settings, SettingsError

log = logging.getLogger("whisper_server")
access_log = logging.getLogger("whisper_server.access")

JSON_TYPE = "application/json"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
JSON_FIELDS = ("audio", *OPTION_NAMES)
_CHUNK = 1 << 16


class WhisperHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        handler = type("Handler", (WhisperHandler,), {"timeout": settings.request_timeout})
        super().__init__((settings.host, settings.port), handler)

    def handle_error(self, request, client_address) -> None:  # an exception that escaped a handler
        log.exception("unhandled error serving %s", client_address)


class WhisperHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"vlp-whisper/{__version__}"
    sys_version = ""
    server: WhisperHTTPServer

    # -- routes -------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._started = time.perf_counter()
        self._discard_body()  # a GET has no use for a body, but its bytes must not be read as the next request
        path = urlsplit(self.path).path
        if path == "/ping":
            engine = self.server.engine
            if engine.ready:
                self._send_json(200, {"status": "healthy", "model": engine.settings.model_id})
            else:
                self._send_json(503, {"status": "loading", "model": engine.settings.model_id})
        elif path == "/invocations":
            self._send_error(ApiError("METHOD_NOT_ALLOWED", "use POST /invocations"))
        else:
            self._send_error(ApiError("NOT_FOUND", f"no route {path}: the routes are GET /ping and POST /invocations"))

    def do_POST(self) -> None:
        self._started = time.perf_counter()
        path = urlsplit(self.path).path
        if path != "/invocations":
            self._discard_body()
            status, code = (405, "METHOD_NOT_ALLOWED") if path == "/ping" else (404, "NOT_FOUND")
            self._send_error(
                ApiError(code, f"no route POST {path}: the routes are GET /ping and POST /invocations", status)
            )
            return
        try:
            result = self._invoke()
        except ApiError as exc:
            self._send_error(exc)
        except (TimeoutError, ConnectionError) as exc:  # the client stalled or went away mid-body
            log.info("client connection lost while reading the request: %s", exc)
            self.close_connection = True
        except Exception:  # a bug: answer 500 and keep serving
            log.exception("request failed")
            self.close_connection = True
            self._send_error(ApiError("MODEL_FAILURE", "internal error while serving the request"))
        else:
            self._send_json(200, result, note=f"audio={result['duration']}s")

    def do_PUT(self) -> None:
        self._method_not_allowed()

    do_DELETE = do_PATCH = do_PUT

    def _method_not_allowed(self) -> None:
        self._started = time.perf_counter()
        self._discard_body()
        self._send_error(ApiError("METHOD_NOT_ALLOWED", "the routes are GET /ping and POST /invocations"))

    # -- /invocations ---------------------------------------------------------------------------------------------

    def _invoke(self) -> dict[str, Any]:
        settings, engine = self.server.settings, self.server.engine
        if not engine.ready:
            self._discard_body()
            raise ApiError("MODEL_NOT_READY", "the model is still loading; retry shortly")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == JSON_TYPE:
            limit = (settings.max_audio_bytes + 2) // 3 * 4 + 65536  # base64 grows the audio by 4/3
        elif content_type in audio.AUDIO_CONTENT_TYPES:
            limit = settings.max_audio_bytes
        else:
            self._discard_body()
            raise ApiError(
                "UNSUPPORTED_MEDIA_TYPE",
                f"unsupported Content-Type {content_type or '(none)'!r}: send audio/wav, audio/mpeg, audio/flac, "
                "audio/ogg or audio/webm bytes, or application/json with base64 audio",
            )
        body = self._read_body(limit)
        raw_options: dict[str, Any] = parse_custom_attributes(self.headers.get(CUSTOM_ATTRIBUTES))
        if content_type == JSON_TYPE:
            audio_bytes, json_options = _parse_json(body)
            raw_options.update(json_options)  # the body's fields win over the header's
        else:
            audio_bytes = body
        if len(audio_bytes) > settings.max_audio_bytes:
            raise ApiError(
                "AUDIO_TOO_LARGE",
                f"the audio is {len(audio_bytes)} bytes; "
                f"the limit is {settings.max_audio_bytes} bytes (MAX_AUDIO_BYTES)",
            )
        options = engine.options(raw_options)
        samples = audio.decode(audio_bytes, max_seconds=settings.max_audio_seconds)
        return engine.transcribe(samples, options)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise ApiError("INVALID_REQUEST", f"invalid Content-Length {raw_length!r}") from None
        if length > limit:
            self._discard(length)
            raise ApiError(
                "AUDIO_TOO_LARGE", f"the request body is {length} bytes; the limit is {limit} bytes (MAX_AUDIO_BYTES)"
            )
        data = self.rfile.read(length)
        if len(data) < length:
            raise ConnectionError(f"body ended after {len(data)} of {length} bytes")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        try:
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > limit:
                    self.close_connection = True
                    raise ApiError(
                        "AUDIO_TOO_LARGE", f"the request body is over the limit of {limit} bytes (MAX_AUDIO_BYTES)"
                    )
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        except ValueError:
            self.close_connection = True
            raise ApiError("INVALID_REQUEST", "malformed chunked request body") from None

    def _discard_body(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return
        self._discard(length)

    def _discard(self, length: int) -> None:
        """Read and drop a body we will not use, so the connection stays usable; close it if the body is huge."""
        cap = max(4 * self.server.settings.max_audio_bytes, 64 << 20)
        if length > cap:
            self.close_connection = True
            return
        try:
            while length > 0:
                got = self.rfile.read(min(length, _CHUNK))
                if not got:
                    break
                length -= len(got)
        except OSError:
            self.close_connection = True

    # -- responses --------------------------------------------------------------------------------------------------

    def _send_error(self, exc: ApiError) -> None:
        self._send_json(exc.status, exc.body(), note=exc.code)

    def _send_json(self, status: int, payload: dict[str, Any], note: str = "") -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:
            log.info("could not send the response: %s", exc)
            self.close_connection = True
        elapsed = time.perf_counter() - getattr(self, "_started", time.perf_counter())
        level = logging.DEBUG if self.path == "/ping" and status == 200 else logging.INFO
        access_log.log(level, "%s %s %d %.3fs %s", self.command, self.path, status, elapsed, note)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own errors (bad request line, unsupported method, headers too long) as JSON too."""
        self.close_connection = True
        if code == 501:
            exc = ApiError("METHOD_NOT_ALLOWED", f"method {self.command!r} is not supported")
        else:
            exc = ApiError("BAD_REQUEST" if code == 400 else f"HTTP_{code}", message or "bad request", code)
        if not hasattr(self, "_started"):
            self._started = time.perf_counter()
        if not self.command:  # the request line was unreadable: still answer with a status line, not HTTP/0.9
            self.request_version = "HTTP/1.0"
            self.command, self.path = "-", "-"
        self._send_error(exc)

    def log_request(self, code="-", size="-") -> None:  # _send_json logs instead
        pass

    def log_message(self, format: str, *args) -> None:
        log.info("%s - %s", self.address_string(), format % args)


def _parse_json(body: bytes) -> tuple[bytes, dict[str, Any]]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError("INVALID_JSON", f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError("INVALID_REQUEST", 'the JSON body must be an object: {"audio": "<base64>", ...}')
    unknown = sorted(set(payload) - set(JSON_FIELDS))
    if unknown:
        raise ApiError(
            "INVALID_OPTION", f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(JSON_FIELDS)}"
        )
    encoded = payload.get("audio")
    if not isinstance(encoded, str) or not encoded.strip():
        raise ApiError("INVALID_REQUEST", '"audio" is required: the audio file as a base64 string')
    return _b64decode(encoded), {k: v for k, v in payload.items() if k != "audio"}


def _b64decode(encoded: str) -> bytes:
    text = encoded.strip()
    if text.startswith("data:") and "," in text:  # a data URI: data:audio/wav;base64,....
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("INVALID_REQUEST", '"audio" is not valid base64') from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "serve":
        print(
            f"usage: python -m whisper_server [serve]  (got {' '.join(argv)!r}; this image only serves)",
            file=sys.stderr,
        )
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"whisper_server: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, settings.log_level, logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        load_hub_token()  # HF_TOKEN_SECRET_ID: the token of hub-loaded gated weights, read through the role
    except HubTokenError as exc:
        print(f"whisper_server: configuration error: {exc}", file=sys.stderr)
        return 2
    engine = Engine(settings)
    server = WhisperHTTPServer(settings, engine)
    host, port = server.server_address[:2]
    log.info("whisper_server %s listening on %s:%d (model %s)", __version__, host, port, settings.model)
    stopping = threading.Event()

    def stop(signum, frame) -> None:
        log.info("signal %d: shutting down", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # HTTP runs in a thread so /ping answers 503 during the load. The model itself is created on the main thread,
    # which lives as long as the process: created on a thread that then exited, CTranslate2's CPU inference ran
    # 10-40x slower (measured with 2 intra-op threads on a busy 2-core host).
    http = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="http", daemon=True)
    http.start()
    status = 0
    try:
        engine.load()
    except Exception as exc:
        log.error("model load failed: %s", exc)
        status = 1
    else:
        while not stopping.wait(1.0) and http.is_alive():
            pass
    server.shutdown()
    server.server_close()
    return status
