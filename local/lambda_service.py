"""A local Lambda service (runs in .venv): the Invoke API over the request-path functions.

    POST /2015-03-31/functions/<FunctionName or ARN>/invocations

is what the AWS SDKs send (boto3 `lambda.invoke`, `AWS_ENDPOINT_URL_LAMBDA`); the local Step Functions and the
local API call it the same way. Each function runs its real handler (`vlp.handlers.<name>.handler`) with the
environment the function has in the synthesized template (endpoints of the local services added), in execution
environments forked from a pre-initialised zygote (local/lambda_sandbox.py): one invocation at a time per
environment, new environments for concurrent invocations, the function's timeout enforced (the environment is
killed and the caller gets `Sandbox.Timedout`, as Lambda reports it).

Responses follow Lambda: 200 with the function's result, or 200 with `X-Amz-Function-Error: Unhandled` and the
runtime's error payload (`{"errorMessage", "errorType", "stackTrace", "requestId"}`); 404
ResourceNotFoundException, 413 RequestTooLargeException (6 MB synchronous payload).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from local.common import ROOT, Handler, Server, die_with_parent, serve, setup_logging
from local.lambda_sandbox import recv_frame, send_frame

log = logging.getLogger("lambda")
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
SANDBOX_SCRIPT = Path(__file__).resolve().parent / "lambda_sandbox.py"


@dataclass
class Sandbox:
    pid: int
    sock: socket.socket


@dataclass
class FunctionPool:
    """One function: its zygote, its idle execution environments, and how many exist."""

    name: str
    spec: dict
    max_concurrency: int
    zygote: subprocess.Popen | None = None
    idle: list[Sandbox] = field(default_factory=list)
    total: int = 0
    pending: int = 0
    invocations: int = 0
    waiting: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def request_sandbox(self) -> None:
        """Ask the zygote for one more environment (call with cond held)."""
        assert self.zygote is not None and self.zygote.stdin is not None
        if self.zygote.poll() is not None:
            raise RuntimeError(f"the {self.name} zygote exited with {self.zygote.returncode}")
        self.pending += 1
        self.zygote.stdin.write(b"fork\n")
        self.zygote.stdin.flush()

    def acquire(self, timeout: float) -> Sandbox:
        deadline = time.monotonic() + timeout
        with self.cond:
            self.waiting += 1
            try:
                while not self.idle:
                    # one new environment per waiting invocation, up to the function's concurrency
                    if self.total + self.pending < self.max_concurrency and self.pending < self.waiting:
                        self.request_sandbox()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"no execution environment of {self.name} became free")
                    self.cond.wait(min(remaining, 1.0))
                return self.idle.pop()
            finally:
                self.waiting -= 1

    def release(self, sandbox: Sandbox) -> None:
        with self.cond:
            self.idle.append(sandbox)
            self.cond.notify()

    def discard(self, sandbox: Sandbox) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sandbox.pid, signal.SIGKILL)
        sandbox.sock.close()
        with self.cond:
            self.total -= 1
            self.cond.notify()

    def register(self, sandbox: Sandbox) -> None:
        with self.cond:
            self.pending = max(0, self.pending - 1)
            self.total += 1
            self.idle.append(sandbox)
            self.cond.notify()


class LambdaService:
    def __init__(
        self, functions: dict[str, dict], *, log_dir: Path, base_env: dict[str, str], max_concurrency: int = 64
    ) -> None:
        self.socket_name = f"\0vlp-local-lambda-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_name)
        self.listener.listen(256)
        self.log_dir = log_dir
        self.base_env = base_env
        self.pools = {name: FunctionPool(name, spec, max_concurrency) for name, spec in functions.items()}
        threading.Thread(target=self._accept, name="sandboxes", daemon=True).start()

    # ---- environments ----
    def start(self, prewarm: int = 1) -> None:
        for name, pool in self.pools.items():
            spec = pool.spec
            sandbox_spec = {
                "function": name,
                "handler": spec["handler"],
                "arn": spec["arn"],
                "memory": spec.get("memory", 128),
                "socket": self.socket_name,
                "task_root": spec.get("task_root") or str(ROOT / "lambdas"),
                "log_stream": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            }
            env = dict(self.base_env)
            env.update({k: str(v) for k, v in spec.get("environment", {}).items()})
            env.update(
                {
                    "VLP_LOCAL_SANDBOX": json.dumps(sandbox_spec),
                    "AWS_LAMBDA_FUNCTION_NAME": name,
                    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.get("memory", 128)),
                    "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                    "AWS_LAMBDA_LOG_STREAM_NAME": sandbox_spec["log_stream"],
                    "LAMBDA_TASK_ROOT": spec.get("task_root") or str(ROOT / "lambdas"),
                    "_HANDLER": spec["handler"],
                }
            )
            # the zygote keeps its own copy of the log's descriptor
            with open(self.log_dir / f"lambda-{name}.log", "ab") as log_file:
                pool.zygote = subprocess.Popen(
                    [sys.executable, str(SANDBOX_SCRIPT)],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=spec.get("task_root") or str(ROOT / "lambdas"),
                )
            with pool.cond:
                for _ in range(prewarm):
                    pool.request_sandbox()

    def wait_warm(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for pool in self.pools.values():
            with pool.cond:
                while pool.total == 0:
                    if pool.zygote is not None and pool.zygote.poll() is not None:
                        raise RuntimeError(f"function {pool.name}: the runtime exited; see lambda-{pool.name}.log")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise RuntimeError(f"function {pool.name} did not start; see lambda-{pool.name}.log")
                    pool.cond.wait(min(remaining, 0.5))

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                frame = recv_frame(conn)
                if frame is None:
                    conn.close()
                    continue
                hello, _ = frame
                pool = self.pools[hello["hello"]]
                pool.register(Sandbox(int(hello["pid"]), conn))
            except Exception:
                log.exception("a sandbox failed to register")
                conn.close()

    def stop(self) -> None:
        for pool in self.pools.values():
            for sandbox in pool.idle:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(sandbox.pid, signal.SIGKILL)
            if pool.zygote is not None and pool.zygote.poll() is None:
                pool.zygote.kill()
        self.listener.close()

    # ---- invocations ----
    def resolve(self, function_name: str) -> FunctionPool | None:
        name = unquote(function_name)
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else ""
        else:
            name = name.split(":")[0]
        return self.pools.get(name)

    def invoke(self, pool: FunctionPool, payload: bytes, *, request_id: str) -> tuple[bool, bytes]:
        """(ok, payload): the function's result, or Lambda's error payload."""
        timeout = float(pool.spec.get("timeout", 3))
        started = time.monotonic()
        sandbox = pool.acquire(timeout=300.0)
        with pool.cond:
            pool.invocations += 1
        deadline = time.time() + timeout - (time.monotonic() - started)
        try:
            sandbox.sock.settimeout(max(0.05, deadline - time.time()) + 0.2)
            send_frame(
                sandbox.sock,
                {
                    "request_id": request_id,
                    "deadline": deadline,
                    "trace_id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                },
                payload,
            )
            frame = recv_frame(sandbox.sock)
        except TimeoutError:
            pool.discard(sandbox)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            message = f"{now} {request_id} Task timed out after {timeout:.2f} seconds"
            log.warning("%s %s timed out after %.2f s", pool.name, request_id, timeout)
            return False, json.dumps({"errorMessage": message, "errorType": "Sandbox.Timedout"}).encode()
        except OSError:
            frame = None
        if frame is None:
            pool.discard(sandbox)
            return False, json.dumps(
                {
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited unexpectedly",
                    "errorType": "Runtime.ExitError",
                }
            ).encode()
        pool.release(sandbox)
        header, data = frame
        return bool(header.get("ok")), data


SERVICE: LambdaService | None = None


class LambdaHandler(Handler):
    def _error(self, status: int, code: str, message: str) -> None:
        self.send(
            status,
            {"Type": "User", "message": message},
            headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
        )

    def do_GET(self) -> None:
        assert SERVICE is not None
        if self.path.rstrip("/") in ("/2015-03-31/functions", "/_admin/functions"):
            functions = [
                {
                    "FunctionName": p.name,
                    "FunctionArn": p.spec["arn"],
                    "Handler": p.spec["handler"],
                    "Timeout": p.spec.get("timeout"),
                    "MemorySize": p.spec.get("memory"),
                    "Environment": {"Variables": p.spec.get("environment", {})},
                    "LocalEnvironments": p.total,
                    "LocalInvocations": p.invocations,
                }
                for p in SERVICE.pools.values()
            ]
            return self.send(200, {"Functions": functions})
        if self.path == "/ping":
            return self.send(200, {"ok": True})
        return self._error(404, "ResourceNotFoundException", "Not found")

    def do_POST(self) -> None:
        assert SERVICE is not None
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 4 or parts[0] != "2015-03-31" or parts[1] != "functions" or parts[3] != "invocations":
            self.read_body()
            return self._error(404, "ResourceNotFoundException", "Not found")
        payload = self.read_body(MAX_SYNC_PAYLOAD)
        if payload is None:
            return self._error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation",
            )
        pool = SERVICE.resolve(parts[2])
        if pool is None:
            return self._error(404, "ResourceNotFoundException", f"Function not found: {unquote(parts[2])}")
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        request_id = str(uuid.uuid4())
        if invocation_type == "DryRun":
            return self.send(204, b"", headers={"x-amzn-RequestId": request_id})
        if invocation_type == "Event":
            threading.Thread(
                target=SERVICE.invoke, args=(pool, payload), kwargs={"request_id": request_id}, daemon=True
            ).start()
            return self.send(202, b"", headers={"x-amzn-RequestId": request_id})
        started = time.monotonic()
        try:
            ok, data = SERVICE.invoke(pool, payload, request_id=request_id)
        except (TimeoutError, RuntimeError) as error:
            log.error("%s: %s", pool.name, error)
            return self._error(500, "ServiceException", str(error))
        headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": "$LATEST"}
        if not ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
        log.info(
            "invoke %s %s %s %.0f ms",
            pool.name,
            request_id,
            "ok" if ok else "error",
            (time.monotonic() - started) * 1000,
        )
        return self.send(200, data, headers=headers, content_type="application/json")


def main() -> None:
    global SERVICE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--functions", type=Path, required=True, help="JSON: {name: {handler, arn, timeout, ...}}")
    parser.add_argument("--log-dir", type=Path, required=True)
    args = parser.parse_args()
    setup_logging("lambda")
    die_with_parent()
    config = json.loads(args.functions.read_text())
    server = Server(("127.0.0.1", args.port), LambdaHandler)
    SERVICE = LambdaService(config["functions"], log_dir=args.log_dir, base_env=config["base_environment"])
    started = time.monotonic()
    SERVICE.start()
    try:
        SERVICE.wait_warm()
    except RuntimeError as error:
        log.error("%s", error)
        SERVICE.stop()
        sys.exit(1)
    log.info(
        "%d functions initialised in %.1f s: %s",
        len(SERVICE.pools),
        time.monotonic() - started,
        ", ".join(SERVICE.pools),
    )
    try:
        serve(server, log, "Lambda service")
    finally:
        SERVICE.stop()


if __name__ == "__main__":
    main()
