"""One Lambda function's execution environments (run by local/lambda_service.py as a script, in .venv).

The process started by the service is the function's *zygote*: it does the cold start once, the way the Lambda
Python runtime does (the handler module imported with the function's environment, `LAMBDA_TASK_ROOT` = lambdas/
first on sys.path), then forks one *sandbox* per concurrent execution when the service asks ("fork" on stdin).
A sandbox connects back to the service over a Unix socket and runs one invocation at a time, like a Lambda
execution environment: module state (settings, AWS clients) is the zygote's, never shared between concurrent
invocations. stdout/stderr go to the function's log, with Lambda's START / END / REPORT lines.

Frames on the socket: 4-byte header length, 4-byte payload length, header JSON, payload bytes.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import resource
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

_FRAME = struct.Struct("!II")


def send_frame(sock: socket.socket, header: dict, payload: bytes = b"") -> None:
    raw = json.dumps(header, separators=(",", ":")).encode()
    sock.sendall(_FRAME.pack(len(raw), len(payload)) + raw + payload)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> tuple[dict, bytes] | None:
    sizes = _read_exactly(sock, _FRAME.size)
    if sizes is None:
        return None
    header_size, payload_size = _FRAME.unpack(sizes)
    header = _read_exactly(sock, header_size)
    payload = _read_exactly(sock, payload_size) if payload_size else b""
    if header is None or payload is None:
        return None
    return json.loads(header), payload


class LambdaContext:
    """The context object the Lambda Python runtime passes to handlers."""

    def __init__(self, spec: dict, request_id: str, deadline: float) -> None:
        self.function_name = spec["function"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec["arn"]
        self.memory_limit_in_mb = int(spec["memory"])
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec['function']}"
        self.log_stream_name = spec["log_stream"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    """The error payload as the Lambda Python runtime reports an unhandled exception."""
    payload: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }
    if request_id:
        payload["requestId"] = request_id
    return payload


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def sandbox(spec: dict, handler: Any, init_error: dict | None) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()  # the zygote
    with contextlib.suppress(OSError):
        sys.stdin.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(spec["socket"])
    send_frame(sock, {"hello": spec["function"], "pid": os.getpid()})
    while True:
        frame = recv_frame(sock)
        if frame is None:
            return
        header, payload = frame
        request_id = header["request_id"]
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.perf_counter()
        ok = False
        if init_error is not None:
            result = dict(init_error, requestId=request_id)
            print(f"[ERROR] {init_error['errorType']}: {init_error['errorMessage']}", flush=True)
        else:
            try:
                if header.get("trace_id"):
                    os.environ["_X_AMZN_TRACE_ID"] = header["trace_id"]
                event = json.loads(payload) if payload else {}
                context = LambdaContext(spec, request_id, header["deadline"])
                value = handler(event, context)
                try:
                    data = json.dumps(value, separators=(",", ":")).encode()
                    ok = True
                except (TypeError, ValueError) as exc:
                    result = {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                        "requestId": request_id,
                        "stackTrace": [],
                    }
            except Exception as exc:
                result = _error(exc, request_id)
                print(
                    f"[ERROR] {result['errorType']}: {result['errorMessage']}\nTraceback (most recent call last):\n"
                    + "".join(result["stackTrace"]),
                    flush=True,
                )
        duration = (time.perf_counter() - started) * 1000
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"END RequestId: {request_id}", flush=True)
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration) + 1} ms\t"
            f"Memory Size: {spec['memory']} MB\tMax Memory Used: {rss} MB",
            flush=True,
        )
        if ok:
            send_frame(sock, {"ok": True}, data)
        else:
            send_frame(sock, {"ok": False}, json.dumps(result, separators=(",", ":")).encode())


def main() -> None:
    spec = json.loads(os.environ.pop("VLP_LOCAL_SANDBOX"))
    sys.path[0] = spec["task_root"]  # not local/: the handler sees what Lambda's /var/task gives it
    _die_with_parent()  # the service
    started = time.perf_counter()
    init_error = None
    handler = None
    module_name, _, function = spec["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function)
    except Exception as exc:
        init_error = _error(exc)
        print(f"[ERROR] {init_error['errorType']}: {init_error['errorMessage']}", flush=True)
    print(f"INIT_REPORT Init Duration: {(time.perf_counter() - started) * 1000:.2f} ms", flush=True)
    gc.collect()
    gc.freeze()  # forked sandboxes share the initialised heap copy-on-write
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sandboxes are reaped automatically
    for line in sys.stdin.buffer:
        if line.strip() != b"fork":
            continue
        if os.fork() == 0:
            try:
                sandbox(spec, handler, init_error)
            finally:
                os._exit(0)


if __name__ == "__main__":
    main()
