"""The demo in a real browser: `make demo` (on a free port, over its own local mode on free ports) driven by headless
Chromium through selenium. Debian's `chromium` and `chromium-driver` packages provide the browser and its driver
(no browser download is reachable); without them every test here is skipped, saying how to install them.

VLP_DEMO_URL=http://127.0.0.1:7860 runs the tests against a demo that is already up instead;
VLP_DEMO_MAKE_ARGS adds arguments to that `make demo` (e.g. `-o install` to skip its install step).
Screenshots and the demo's log go to build/test-artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "browser"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
START_TIMEOUT = 900  # a fresh clone synthesizes the CDK app before local mode answers
LOCAL_PORTS = " ".join(f"--{service}-port 0" for service in ("api", "s3", "sagemaker", "lambda", "sfn"))
# local mode with the cloud's default auth: the page's calls are SigV4-signed with local mode's credentials
LOCAL_AUTH = "--auth iam"


def browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return (chromium, driver) if chromium and driver else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (a local http URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    paths = browser_paths()
    if paths is None:
        pytest.skip(f"Chromium and chromedriver are not installed: {INSTALL}")
    return paths


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


@pytest.fixture(scope="session")
def demo(chromium: tuple[str, str], artifacts: Path) -> Iterator[str]:
    """`make demo` as a user runs it (over local mode with IAM auth); `make demo-down` afterwards, which also stops
    the local mode it started."""
    existing = os.environ.get("VLP_DEMO_URL")
    if existing:
        yield existing.rstrip("/")
        return
    state = Path(tempfile.mkdtemp(prefix="vlp-demo-test-"))
    pid_file = state / "demo.json"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = artifacts / "demo.log"
    # a parent `make ... ENV=prod` must not turn this into a demo of a deployed stack
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "API_URL", "ENV")}
    make_args = [f"DEMO_PORT={port}", f"DEMO_ARGS=--pid-file {pid_file}"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "demo",
                *make_args,
                *shlex.split(os.environ.get("VLP_DEMO_MAKE_ARGS", "")),
                f"LOCAL_ARGS=--state-dir {state} {LOCAL_PORTS} {LOCAL_AUTH}",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(url + "/"):
            if process.poll() is not None:
                pytest.fail(f"make demo exited with {process.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"make demo did not serve {url} in {START_TIMEOUT} s:\n{_tail(log_path)}")
            time.sleep(1)
        record = json.loads(pid_file.read_text())
        assert record["started_local"] is True, record  # its own local mode, on free ports
        yield url
    finally:
        subprocess.run(
            ["make", "--no-print-directory", "demo-down", f"DEMO_ARGS=--pid-file {pid_file}"],
            cwd=ROOT,
            env=env,
            check=False,
            timeout=180,
        )
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        leftover = state / "run" / "state.json"
        still_up = leftover.exists()
        if still_up:  # never leave local mode running; then report it
            subprocess.run(
                [str(ROOT / ".venv/bin/python"), "-m", "local.up", "down", "--state-dir", str(state)], check=False
            )
        shutil.rmtree(state, ignore_errors=True)
        assert not still_up, "make demo-down left the local mode the demo started running"
        assert not pid_file.exists()


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,2000", "--lang=en-US"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
