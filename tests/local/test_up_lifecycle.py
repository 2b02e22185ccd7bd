"""`python -m local.up` (make up / make down) as a user runs it: a launcher in a subprocess, on free ports, its state in
tmp_path. Down after a complete up, down while up is still starting, Ctrl-C / SIGTERM during start-up, a second up
refused; each ends with no process of ours left (the recorded process groups, the launcher, anything naming the state
directory). Start-up is cut short with the launcher's test knob VLP_LOCAL_TEST_HOLD_AFTER=<service> (it waits right
after starting that service); the synthesized app comes from the shared cache (.local/cdk.out, synthesized once per
change of the CDK sources)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
SERVICES = ("s3", "sagemaker", "lambda", "sfn", "api")
FREE_PORTS = [arg for service in SERVICES for arg in (f"--{service}-port", "0")]


class Launcher:
    """One state directory and the launchers started on it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.run_dir = state_dir / "run"
        self.started: list[subprocess.Popen[bytes]] = []
        self.groups: set[int] = set()  # every process group a state file ever listed

    def args(self, command: str) -> list[str]:
        return [str(PYTHON), "-m", "local.up", command, "--state-dir", str(self.state_dir)]

    def up(self, hold_after: str | None = None, new_session: bool = False) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "VLP_LOCAL_TEST_HOLD_AFTER"}
        if hold_after:
            env["VLP_LOCAL_TEST_HOLD_AFTER"] = hold_after
        index = len(self.started)
        with (
            (self.state_dir / f"launcher-{index}.out").open("wb") as stdout,
            (self.state_dir / f"launcher-{index}.err").open("wb") as stderr,
        ):
            process = subprocess.Popen(
                [*self.args("up"), *FREE_PORTS],
                cwd=ROOT,
                env=env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=new_session,
            )
        self.started.append(process)
        return process

    def output(self, process: subprocess.Popen[bytes]) -> tuple[str, str]:
        index = self.started.index(process)
        return (
            (self.state_dir / f"launcher-{index}.out").read_text(),
            (self.state_dir / f"launcher-{index}.err").read_text(),
        )

    def cli(self, command: str, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.args(command), *extra], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )

    def state(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.run_dir / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        self.groups.update((state.get("pids") or {}).values())
        return state

    def wait_state(self, done: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state is not None and done(state):
                return state
            for process in self.started:
                assert process.poll() is None, f"launcher exited early: {self.output(process)}"
            time.sleep(0.05)
        raise AssertionError(f"state not reached in {timeout} s: {self.state()}")

    def leftovers(self) -> list[str]:
        return [f"{pid} (group {pgid}): {cmdline[:160]}" for pid, pgid, cmdline in self.processes()]

    def processes(self) -> list[tuple[int, int, str]]:
        """Live (non-zombie) processes of ours: in a recorded group, a launcher, or naming the state directory."""
        self.state()
        launchers = {process.pid for process in self.started if process.poll() is None}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[0] in ("Z", "X"):
                continue
            pid, pgid = int(entry.name), int(fields[2])
            if pgid in self.groups or pid in launchers or str(self.state_dir) in cmdline:
                found.append((pid, pgid, cmdline))
        return found

    def headers(self) -> int:
        """How many times any service was started into this state directory (one header line per start)."""
        logs = self.state_dir / "logs"
        return sum(path.read_text(errors="replace").count("\n==== ") for path in logs.glob("*.log"))


def gone(launcher: Launcher, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := launcher.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    local = Launcher(tmp_path / "state")
    local.state_dir.mkdir()
    yield local
    # whatever a failed test left: the same `down` a user runs, then the launchers themselves
    if local.leftovers():
        local.cli("down", timeout=90)
    for process in local.started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_down_after_a_complete_up(launcher):
    first = launcher.up()
    assert first.wait(timeout=300) == 0, launcher.output(first)
    state = launcher.state()
    assert state is not None and state["phase"] == "up" and set(state["pids"]) == set(SERVICES)
    assert not (launcher.run_dir / "up.lock").read_text().strip()  # the launcher let go of its lock
    status = launcher.cli("status")
    assert status.stdout.count(" running") == len(SERVICES), status.stdout

    # a second up while it runs: one line, non-zero, nothing started
    starts = launcher.headers()
    second = launcher.cli("up", *FREE_PORTS, timeout=60)
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0 and "already up" in second.stderr, second.stderr
    assert launcher.headers() == starts and launcher.state() == state

    down = launcher.cli("down")
    assert down.returncode == 0, down.stderr
    assert all(service in down.stdout for service in SERVICES), down.stdout
    assert gone(launcher) == []
    assert launcher.state() is None
    assert "not running" in launcher.cli("down").stdout


@pytest.mark.parametrize("hold_after", ["sagemaker", "api"])
def test_down_while_up_is_still_starting(launcher, hold_after):
    # a lock left by a launcher that was killed: taken over
    dead = subprocess.Popen(["true"])
    dead.wait()
    launcher.run_dir.mkdir(parents=True)
    (launcher.run_dir / "up.lock").write_text(f"{dead.pid}\n")

    up = launcher.up(hold_after=hold_after)
    started = SERVICES[: SERVICES.index(hold_after) + 1]
    state = launcher.wait_state(lambda s: hold_after in s["pids"])
    assert state["phase"] == "starting" and state["owner"] == up.pid and set(state["pids"]) == set(started)
    assert up.poll() is None  # still starting

    down = launcher.cli("down")
    assert down.returncode == 0, down.stderr
    assert f"pid {up.pid}" in down.stdout and all(service in down.stdout for service in started), down.stdout
    assert up.wait(timeout=30) == 128 + signal.SIGTERM
    assert f"took over the lock of pid {dead.pid}" in launcher.output(up)[1]
    assert gone(launcher) == []
    assert launcher.state() is None
    # nothing after the held service ever started
    logs = {path.stem for path in (launcher.state_dir / "logs").glob("*.log")}
    assert logs & set(SERVICES) == set(started), logs


@pytest.mark.parametrize(("signum", "hold_after"), [(signal.SIGINT, "lambda"), (signal.SIGTERM, "sfn")])
def test_interrupted_up_stops_what_it_started(launcher, signum, hold_after):
    up = launcher.up(hold_after=hold_after, new_session=True)
    state = launcher.wait_state(lambda s: hold_after in s["pids"])
    assert launcher.leftovers()  # the services run
    if signum == signal.SIGINT:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the launcher's whole process group
    else:
        up.send_signal(signum)
    assert up.wait(timeout=30) == 128 + signum
    assert "during start-up: stopped what had started" in launcher.output(up)[1]
    assert set(state["pids"]) == set(SERVICES[: SERVICES.index(hold_after) + 1])
    assert gone(launcher) == []
    assert launcher.state() is None
    assert "not running" in launcher.cli("down").stdout


def test_second_up_is_refused_while_one_is_starting(launcher):
    first = launcher.up(hold_after="sagemaker")
    state = launcher.wait_state(lambda s: "sagemaker" in s["pids"])
    starts = launcher.headers()

    second = launcher.cli("up", *FREE_PORTS, timeout=60)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "already starting or running" in lines[0] and f"pid {first.pid}" in lines[0], lines
    assert second.stdout == ""
    # nothing new: same state, no service started, same processes
    assert launcher.state() == state and launcher.headers() == starts
    ours = set(state["pids"].values())
    assert all(pgid in ours or pid == first.pid for pid, pgid, _ in launcher.processes()), launcher.leftovers()
    assert first.poll() is None

    assert launcher.cli("down").returncode == 0
    assert first.wait(timeout=30) == 128 + signal.SIGTERM
    assert gone(launcher) == []
