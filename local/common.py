"""Stdlib-only helpers shared by the local-mode processes (both virtualenvs import this)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account: names built from it match what moto reports
# Dummy credentials: every local service accepts them; nothing here ever reaches AWS.
ACCESS_KEY = "local"
SECRET_KEY = "local-secret"  # noqa: S105 (the dummy credential above, not a secret)


def setup_logging(name: str, level: str = "INFO") -> logging.Logger:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {name} %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    return logging.getLogger(name)


def die_with_parent(always: bool = False) -> None:
    """Linux: this process gets SIGTERM when its parent exits (no orphans when a test run crashes). Services started
    by `make up` outlive their launcher: they do this only when VLP_LOCAL_DIE_WITH_PARENT=1 (or `always`)."""
    if not always and os.environ.get("VLP_LOCAL_DIE_WITH_PARENT") != "1":
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM a child process, SIGKILL it if it has not exited within `timeout` seconds; its exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


class ServiceError(Exception):
    """An error answer of a local AWS service: its error code, HTTP status, message and extra response fields (each
    service renders them in its own wire format)."""

    def __init__(self, code: str, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.extra = extra


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def get_request(self):
        connection, address = super().get_request()
        # small request/response exchanges: no Nagle delay waiting for the peer's (delayed) ACK
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every response has a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "vlp-local"
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's pending header lines (send_header fills it)
    sys_version = ""
    log = logging.getLogger("http")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # each server logs its own access lines

    def read_body(self, limit: int | None = None) -> bytes | None:
        """The request body; None when it is above ``limit`` (the rest is drained, the connection closed)."""
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        if limit is not None and length > limit:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int | None) -> bytes | None:
        chunks = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                break
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
            total += size
            if limit is not None and total > limit:
                self.close_connection = True
                return None
        return b"".join(chunks)

    def send(
        self,
        status: int,
        body: bytes | str | dict | list = b"",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
            content_type = content_type or "application/json"
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # headers and body in one write (one segment for small responses)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and body:
            self._headers_buffer.append(body)
        self.flush_headers()


def serve(server: Server, log: logging.Logger, what: str) -> None:
    """serve_forever until SIGTERM/SIGINT; then a clean shutdown."""
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    log.info("%s listening on http://%s:%s", what, host, port)
    stop.wait()
    log.info("%s shutting down", what)
    server.shutdown()
    server.server_close()


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2))
    os.replace(tmp, path)
