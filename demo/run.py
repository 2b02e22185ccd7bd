"""`make demo` / `make demo-down`: start the demo (and local mode, when no API is named and it is not up), stop it.

    python -m demo.run up [--port 7860] [--api-url URL | --env NAME] [--local-args '...'] [--pid-file F] [app options]
    python -m demo.run down [--pid-file F]
    python -m demo.run status [--pid-file F]

`up` runs the app in the foreground (Ctrl-C stops it) and records itself in the pid file (.local/demo/demo.json):
its pid, URL and whether it started local mode. Stopping it, by Ctrl-C or `down`, also stops the local mode it
started; local mode that was already up stays up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from local.common import HOST, port_in_use  # stdlib only: the demo already runs local mode

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PID_FILE = ROOT / ".local" / "demo" / "demo.json"
DEFAULT_STATE_DIR = ROOT / ".local"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


@dataclass
class Record:
    pid: int
    url: str
    api_url: str
    started_local: bool
    local_state_dir: str | None
    started_at: float


# ---- local mode ----


def local_state_dir(local_args: list[str]) -> Path:
    """The --state-dir that `python -m local.up` will use with these arguments."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    known, _ = parser.parse_known_args(local_args)
    return Path(known.state_dir).resolve()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def api_answers(url: str, timeout: float = 3.0) -> bool:
    """The local API answers (any status below 500: an unknown route is a 404 in the API's own shape)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/", timeout=timeout) as response:  # noqa: S310 (http URL we built)
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def running_local(state_dir: Path) -> dict[str, Any] | None:
    """local mode's state (run/state.json) when every one of its services is alive and the API answers, else None."""
    state_file = state_dir / "run" / "state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    pids = state.get("pids") or {}
    if not pids or not all(_alive(int(pid)) for pid in pids.values()):
        return None
    if not api_answers(str(state.get("api_url", ""))):
        return None
    return state


def start_local(local_args: list[str], env: str) -> dict[str, Any]:
    """`python -m local.up up` (detached; returns once every service answers), then its state."""
    command = [str(VENV_PYTHON), "-m", "local.up", "up", "--env", env, *local_args]
    print(f"demo: local mode is not up, starting it: {shlex.join(command[1:])}", flush=True)
    completed = subprocess.run(command, cwd=ROOT, check=False)
    state = running_local(local_state_dir(local_args))
    if completed.returncode != 0 or state is None:
        raise SystemExit(f"demo: local mode did not start (exit {completed.returncode}); see its logs")
    return state


def stop_local(state_dir: str) -> None:
    subprocess.run(
        [str(VENV_PYTHON), "-m", "local.up", "down", "--state-dir", state_dir], cwd=ROOT, check=False, timeout=120
    )


# ---- the demo's own process ----


def read_record(pid_file: Path) -> Record | None:
    try:
        return Record(**json.loads(pid_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def up(args: argparse.Namespace, app_args: list[str]) -> int:
    pid_file: Path = args.pid_file
    record = read_record(pid_file)
    if record and _alive(record.pid):
        print(f"demo: already running on {record.url} (pid {record.pid}); `make demo-down` stops it", file=sys.stderr)
        return 1
    if port_in_use(args.port, args.host):
        print(
            f"demo: port {args.port} is in use: another demo or program? `make demo-down`, or DEMO_PORT=7861",
            file=sys.stderr,
        )
        return 1
    local_args = shlex.split(args.local_args or "")
    started_local = False
    state_dir: Path | None = None
    if args.api_url or args.env:
        api_url = args.api_url or ""
    else:
        state_dir = local_state_dir(local_args)
        state = running_local(state_dir)
        if state is None:
            state = start_local(local_args, args.local_env)
            started_local = True
        else:
            print(f"demo: local mode is up ({state['api_url']})", flush=True)
        api_url = str(state["api_url"])
        # the client reads local mode's URL and auth (run/state.json, run/credentials.json) from there
        os.environ["VLP_LOCAL_DIR"] = str(state_dir)
    url = f"http://{args.host}:{args.port}"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    record = Record(
        pid=os.getpid(),
        url=url,
        api_url=api_url or f"{args.env}/Api",
        started_local=started_local,
        local_state_dir=str(state_dir) if started_local and state_dir else None,
        started_at=time.time(),
    )
    pid_file.write_text(json.dumps(asdict(record), indent=2) + "\n")
    # Ctrl-C and `make demo-down` (SIGTERM) stop it the same way; SIGINT explicitly too, as a shell that started
    # make in the background may have left it ignored
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    app = session = None
    code = 0
    try:
        from demo import app as demo_app

        where = ["--api-url", args.api_url] if args.api_url else ["--env", args.env] if args.env else []
        options = demo_app.parser().parse_args([*where, *app_args])
        client = demo_app.make_client(options)
        target = demo_app.describe_target(client, options)
        app, session = demo_app.serve(client, target, host=args.host, port=args.port, block=False)
        print(f"demo: serving on {url}, API {target}; Ctrl-C or `make demo-down` stops it", flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("demo: stopping", flush=True)
    except Exception as error:
        if not getattr(error, "code", None):
            raise
        print(f"demo: error {error}", file=sys.stderr)  # the client's VlpError: CODE: message
        code = 2
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if app is not None:
            with contextlib.suppress(Exception):
                app.close()
        if session is not None:
            session.close()
        cleanup(record, pid_file)
    return code


def cleanup(record: Record, pid_file: Path) -> None:
    if record.started_local and record.local_state_dir:
        print("demo: stopping the local mode it started", flush=True)
        stop_local(record.local_state_dir)
    current = read_record(pid_file)
    if current is None or current.pid == record.pid:
        pid_file.unlink(missing_ok=True)


def down(args: argparse.Namespace) -> int:
    record = read_record(args.pid_file)
    if record is None:
        print("demo: not running (no pid file)")
        return 0
    if _alive(record.pid):
        os.kill(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while _alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(record.pid):
            os.kill(record.pid, signal.SIGKILL)
            cleanup(record, args.pid_file)
    else:
        cleanup(record, args.pid_file)  # it died without cleaning up
    args.pid_file.unlink(missing_ok=True)
    print(f"demo: stopped ({record.url})")
    return 0


def status(args: argparse.Namespace) -> int:
    record = read_record(args.pid_file)
    if record is None or not _alive(record.pid):
        print("demo: not running")
        return 1
    print(
        f"demo: {record.url} (pid {record.pid}), API {record.api_url}"
        + (" (started local mode)" * record.started_local)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--pid-file", type=Path, default=DEFAULT_PID_FILE)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--api-url", default=os.environ.get("API_URL") or None)
    parser.add_argument("--env", default=None, help="a deployed environment: its <ENV>/Api stack's ApiUrl")
    parser.add_argument("--local-env", default="dev", help="the environment local mode runs (default dev)")
    parser.add_argument("--local-args", default="", help="arguments for `python -m local.up up` (LOCAL_ARGS)")
    parser.add_argument("--timeout", type=float, default=60.0, help="down: how long to wait for the demo to stop")
    args, app_args = parser.parse_known_args(argv)
    args.pid_file = args.pid_file.resolve()
    if args.command == "up":
        return up(args, app_args)
    if app_args:
        parser.error(f"unrecognized arguments: {' '.join(app_args)}")
    return down(args) if args.command == "down" else status(args)


if __name__ == "__main__":
    sys.exit(main())
