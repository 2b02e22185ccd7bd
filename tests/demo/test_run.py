"""demo/run.py (make demo / make demo-down): finding local mode, the pid file, stopping; the Makefile's targets."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo import run

ROOT = Path(__file__).resolve().parents[2]


class NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    """A real HTTP server answering 404 to everything, like the local API on an unknown route."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def write_state(state_dir: Path, api_url: str, pids: dict[str, int]) -> None:
    (state_dir / "run").mkdir(parents=True, exist_ok=True)
    (state_dir / "run" / "state.json").write_text(json.dumps({"api_url": api_url, "pids": pids}))


def test_local_state_dir_follows_local_args(tmp_path):
    assert run.local_state_dir([]) == run.DEFAULT_STATE_DIR.resolve()
    assert run.local_state_dir(["--api-port", "0", "--state-dir", str(tmp_path)]) == tmp_path.resolve()
    assert run.local_state_dir([f"--state-dir={tmp_path}", "--auth", "iam"]) == tmp_path.resolve()


def test_running_local_needs_live_services_and_an_answering_api(tmp_path, api):
    assert run.running_local(tmp_path) is None  # no state file
    write_state(tmp_path, api, {"api": os.getpid(), "s3": os.getpid()})
    state = run.running_local(tmp_path)
    assert state is not None and state["api_url"] == api
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_state(tmp_path, api, {"api": os.getpid(), "s3": dead.pid})
    assert run.running_local(tmp_path) is None  # a service died: not up
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    write_state(tmp_path, closed, {"api": os.getpid()})
    assert run.running_local(tmp_path) is None  # nothing listens where the API should
    (tmp_path / "run" / "state.json").write_text("{not json")
    assert run.running_local(tmp_path) is None


def test_a_port_is_in_use_while_something_listens_on_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert run.port_in_use(port)
    assert not run.port_in_use(port)


def test_up_refuses_a_second_demo_and_a_taken_port(tmp_path, capsys):
    pid_file = tmp_path / "demo.json"
    record = run.Record(os.getpid(), "http://127.0.0.1:1", "x", False, None, time.time())
    pid_file.write_text(json.dumps(record.__dict__))
    assert run.main(["up", "--pid-file", str(pid_file), "--api-url", "http://127.0.0.1:9"]) == 1
    assert "already running" in capsys.readouterr().err
    pid_file.unlink()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert run.main(["up", "--pid-file", str(pid_file), "--port", str(port), "--api-url", "http://x:1"]) == 1
    assert f"port {port} is in use" in capsys.readouterr().err
    assert not pid_file.exists()


def test_down_without_a_demo(tmp_path, capsys):
    assert run.main(["down", "--pid-file", str(tmp_path / "none.json")]) == 0
    assert "not running" in capsys.readouterr().out
    assert run.main(["status", "--pid-file", str(tmp_path / "none.json")]) == 1


def test_down_stops_the_demo_process_and_removes_the_pid_file(tmp_path):
    pid_file = tmp_path / "demo.json"
    # a stand-in for the demo's process: waits for SIGTERM like run.up does
    process = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"])
    threading.Thread(target=process.wait, daemon=True).start()  # reaped as it exits, as init reaps the real demo
    try:
        record = run.Record(process.pid, "http://127.0.0.1:7", "http://127.0.0.1:8", False, None, time.time())
        pid_file.write_text(json.dumps(record.__dict__))
        assert run.main(["status", "--pid-file", str(pid_file)]) == 0
        started = time.monotonic()
        assert run.main(["down", "--pid-file", str(pid_file), "--timeout", "30"]) == 0
        assert time.monotonic() - started < 10  # stopped by SIGTERM, not killed after the timeout
        assert process.wait(timeout=10) == -15
        assert not pid_file.exists()
    finally:
        if process.poll() is None:
            process.kill()


def test_down_after_a_crash_cleans_up(tmp_path):
    pid_file = tmp_path / "demo.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = run.Record(dead.pid, "http://127.0.0.1:7", "http://127.0.0.1:8", False, None, time.time())
    pid_file.write_text(json.dumps(record.__dict__))
    assert run.main(["status", "--pid-file", str(pid_file)]) == 1
    assert run.main(["down", "--pid-file", str(pid_file)]) == 0
    assert not pid_file.exists()


def demo_command(*make_args: str) -> str:
    """The command `make demo` would run (make -n: nothing runs), with the install steps marked done."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "API_URL", "ENV")}
    printed = subprocess.run(
        ["make", "-n", "-o", "install", "-o", ".stamps/venv-demo", "demo", *make_args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in printed.splitlines() if "-m demo.run up" in line]
    return line


def test_make_demo_targets_local_mode_unless_told_otherwise():
    local = demo_command()
    assert "--port 7860" in local and "--env" not in local.replace("--local-env", "") and "--api-url" not in local
    assert "--local-env dev" in local
    assert "--env prod" in demo_command("ENV=prod")  # ENV on the command line: the deployed stack
    assert "--api-url https://x.example/live" in demo_command("API_URL=https://x.example/live")
    assert "--port 7999" in demo_command("DEMO_PORT=7999")
    assert '--local-args "--auth iam"' in demo_command("LOCAL_ARGS=--auth iam")
