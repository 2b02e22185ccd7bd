"""How local mode's launcher (`python -m local.up up|run`) records, locks and stops what it starts.

- State: `<state-dir>/run/state.json` is written before the first service starts and again as each one starts
  (`owner`: the launcher's pid, `phase`: starting | up, `pids`: service -> pid = process group), so `down` finds
  everything a launcher started, whether start-up finished, failed, was interrupted or is still going.
- Lock: `<state-dir>/run/up.lock` holds the launcher's pid under an exclusive `flock` for the launcher's whole life.
  A second `up`/`run` that cannot take it says who holds it and starts nothing. The kernel drops the flock of a dead
  process, so a lock left by a killed launcher (its pid still in the file) is taken over.
- Signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP become :class:`Interrupted` in the launcher's main thread, so start-up
  unwinds through `LocalService.start`, which stops what it started. A spawn and its state record run inside
  :meth:`SignalGate.deferred`: a signal arriving in between waits for the record, so no service is ever unrecorded.
- `down` (:func:`stop_local`): SIGTERM to a launcher that still holds the lock (it stops its own services and exits),
  SIGKILL if it does not within the timeout; then SIGTERM / SIGKILL to every process group the state records.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("local")

STATE_FILE = "state.json"
LOCK_FILE = "up.lock"
STOP_ORDER = ("api", "sfn", "lambda", "sagemaker", "s3")  # the reverse of the start order
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class AlreadyRunning(RuntimeError):
    """Another launcher holds the lock, or the state records services that are still alive."""


class Interrupted(BaseException):
    """A SIGINT/SIGTERM/SIGHUP received by the launcher, raised in its main thread."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


class SignalGate:
    """Turns the first SIGINT/SIGTERM/SIGHUP into :class:`Interrupted` (later ones are ignored: the launcher is
    already stopping), except inside :meth:`deferred`, where it is raised when the block ends."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._pending = False
        self._depth = 0

    def install(self) -> None:
        """Main thread only (the CLI); a `LocalService` used as a library keeps its host's signal handling."""
        self.received = None
        self._pending = False
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if self._depth:
            self._pending = True
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending and self.received is not None:
            self._pending = False
            raise Interrupted(self.received)

    def wait(self) -> None:
        """Until a handled signal arrives (raised as :class:`Interrupted`)."""
        while True:
            signal.pause()


SIGNALS = SignalGate()


# ---- processes ----


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies, already dead, do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def stop_groups(
    pids: dict[str, int], processes: dict[str, subprocess.Popen[bytes]] | None = None, timeout: float = 15.0
) -> list[str]:
    """SIGTERM each service's process group (the service, its whisper server / sandboxes), wait for the groups to
    exit (``timeout`` for all of them together), then SIGKILL what is left. Returns the services signalled."""
    processes = processes or {}
    names = [name for name in STOP_ORDER if name in pids] + [name for name in pids if name not in STOP_ORDER]
    stopped = []
    for name in names:
        try:
            os.killpg(pids[name], signal.SIGTERM)
            stopped.append(name)
        except (ProcessLookupError, PermissionError):
            continue
    deadline = time.monotonic() + timeout
    for name in stopped:
        pid = pids[name]
        process = processes.get(name)
        while time.monotonic() < deadline:
            if process is not None:
                process.poll()  # reaps the leader when it is our child
            if not group_alive(pid):
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
    return stopped


# ---- state ----


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((run_dir / STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def live_services(state: dict[str, Any] | None) -> dict[str, int]:
    if not state:
        return {}
    return {name: pid for name, pid in (state.get("pids") or {}).items() if group_alive(pid)}


# ---- the launcher's lock ----


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


class UpLock:
    """`run/up.lock`: an exclusive flock held by the launcher for its lifetime, the file holding its pid."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, wait: float = 1.0) -> int | None:
        """Takes the lock (``wait`` covers another command's momentary probe); returns the pid of a dead previous
        owner whose lock was taken over, if any. :class:`AlreadyRunning` when a live launcher holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    owner = _read_pid(fd)
                    os.close(fd)
                    raise AlreadyRunning(
                        f"local mode is already starting or running (pid {owner or '?'}, lock {self.path}); "
                        "`make down` stops it"
                    ) from None
                time.sleep(0.05)
        previous = _read_pid(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return previous if previous not in (None, os.getpid()) else None

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def lock_holder(run_dir: Path) -> int | None:
    """The pid of the live launcher holding `run/up.lock`, or None when nobody holds it."""
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(40):  # the holder writes its pid right after taking the lock
                pid = _read_pid(fd)
                if pid:
                    return pid
                time.sleep(0.05)
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# ---- down ----


def stop_local(run_dir: Path, timeout: float = 60.0) -> tuple[list[str], int | None]:
    """Stop what launchers using ``run_dir`` started: the services a state records and a launcher still starting or
    running (`run`). Returns (the services that were alive, the pid of a launcher that was stopped)."""
    state = read_state(run_dir)
    alive = list(live_services(state))
    launcher = lock_holder(run_dir)
    if launcher is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(launcher, signal.SIGTERM)  # it stops its own services (the ones started since we read, too)
        deadline = time.monotonic() + timeout
        while lock_holder(run_dir) == launcher and time.monotonic() < deadline:
            time.sleep(0.1)
        if lock_holder(run_dir) == launcher:
            log.warning("launcher pid %d did not stop in %.0f s: killing it", launcher, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(launcher, signal.SIGKILL)
            time.sleep(0.2)
        state = read_state(run_dir)  # whatever it had recorded by the time it stopped
        alive += [name for name in live_services(state) if name not in alive]
    if state:
        stop_groups(state.get("pids") or {})
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    return [name for name in STOP_ORDER if name in alive], launcher
