"""The local Lambda runtime itself (local/lambda_service.py): execution environments, timeouts, crashes, init
errors, concurrency. Fixture handlers in tests/local/lambda_fixtures, their own task root."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from local.common import ROOT, free_port, write_json

FIXTURES = Path(__file__).resolve().parent / "lambda_fixtures"


def _function(name: str, handler: str, timeout: int = 3) -> dict:
    return {
        "name": name,
        "handler": handler,
        "arn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        "timeout": timeout,
        "memory": 128,
        "task_root": str(FIXTURES),
        "environment": {"FIXTURE_SETTING": f"set-for-{name}"},
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    state = tmp_path_factory.mktemp("lambda-runtime")
    functions = {
        f["name"]: f
        for f in (
            _function("echo", "fixture_handlers.echo"),
            _function("gather", "fixture_handlers.gather", timeout=30),
            _function("slow", "fixture_handlers.slow", timeout=1),
            _function("crash", "fixture_handlers.crash"),
            _function("fail", "fixture_handlers.fail"),
            _function("broken", "fixture_broken.handler"),
        )
    }
    write_json(state / "functions.json", {"base_environment": {"PATH": "/usr/bin:/bin"}, "functions": functions})
    port = free_port()
    with open(state / "service.log", "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.lambda_service",
                "--port",
                str(port),
                "--functions",
                str(state / "functions.json"),
                "--log-dir",
                str(state),
            ],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "VLP_LOCAL_DIE_WITH_PARENT": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/ping", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (state / "service.log").read_text()
        time.sleep(0.1)
    yield url, state
    process.terminate()
    process.wait(timeout=10)


def _invoke(url: str, name: str, event: dict | None = None) -> requests.Response:
    return requests.post(f"{url}/2015-03-31/functions/{name}/invocations", data=json.dumps(event or {}), timeout=30)


def test_result_context_and_environment(service):
    url, _ = service
    response = _invoke(url, "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST", {"a": 1})
    assert response.status_code == 200 and "X-Amz-Function-Error" not in response.headers
    body = response.json()
    assert body["event"] == {"a": 1} and body["function"] == "echo" and body["env"] == "set-for-echo"
    assert 0 < body["remaining_ms"] <= 3000
    assert body["pid"] != body["init_pid"]  # a forked execution environment, initialised once in the zygote


def test_concurrent_invocations_get_their_own_environments(service):
    # An instant handler let a loaded machine finish one invocation before the next arrived, so one environment
    # served all eight; "gather" returns only once all eight have started, so they overlap for certain.
    url, state = service
    markers = state / "gather"
    markers.mkdir()
    event = {"dir": str(markers), "expect": 8}
    with ThreadPoolExecutor(8) as pool:
        bodies = [r.json() for r in pool.map(lambda _: _invoke(url, "gather", event), range(8))]
    assert len({b["request_id"] for b in bodies}) == 8
    assert len({b["pid"] for b in bodies}) >= 2
    assert len({b["init_pid"] for b in bodies}) == 1


def test_timeout_kills_the_environment(service):
    url, _ = service
    started = time.monotonic()
    response = _invoke(url, "slow", {"seconds": 5})
    assert time.monotonic() - started < 3
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()
    assert body["errorType"] == "Sandbox.Timedout" and "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert _invoke(url, "slow", {"seconds": 0.1}).json() == {"slept": 0.1}  # a fresh environment serves the next


def test_crash_is_a_runtime_exit_error(service):
    url, _ = service
    body = _invoke(url, "crash").json()
    assert body["errorType"] == "Runtime.ExitError"
    assert _invoke(url, "echo").status_code == 200


def test_unhandled_exception_payload(service):
    url, _ = service
    response = _invoke(url, "fail")
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()
    assert body["errorType"] == "CustomError" and body["errorMessage"] == '{"code": "X"}'
    assert body["requestId"] and body["stackTrace"]


def test_init_error_fails_every_invocation(service):
    url, state = service
    for _ in range(2):
        body = _invoke(url, "broken").json()
        assert body["errorType"] == "RuntimeError" and "invalid Lambda environment" in body["errorMessage"]
    log = (state / "lambda-broken.log").read_text()
    assert "INIT_REPORT" in log and "START RequestId" in log and "REPORT RequestId" in log


def test_unknown_function_and_payload_limit(service):
    url, _ = service
    missing = _invoke(url, "nope")
    assert missing.status_code == 404 and missing.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    big = requests.post(f"{url}/2015-03-31/functions/echo/invocations", data=b"x" * (6 * 1024 * 1024 + 1), timeout=30)
    assert big.status_code == 413 and big.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
