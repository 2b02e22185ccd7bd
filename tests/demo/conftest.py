"""The demo's unit tests run in .venv-demo (make test-demo), with the repository root importable. Fixtures: a
picture to upload, and Sessions over a client (closed after the test)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from vlp_client import VlpError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from demo.session import Session  # noqa: E402 (the package `demo` is importable once ROOT is on the path)


@pytest.fixture
def image(tmp_path: Path) -> str:
    """A small red picture, as the page hands it over: a file path."""
    path = tmp_path / "square.png"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(path)
    return str(path)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Callable[[Any], Session]]:
    """Makes a Session over a client, as demo.app.serve does (each its own work directory), and closes it after."""
    made: list[Session] = []

    def make(client: Any) -> Session:
        work = tmp_path / f"work-{len(made)}"
        work.mkdir()
        made.append(Session(client, work_dir=work, error_types=(VlpError, OSError)))
        return made[-1]

    yield make
    for made_session in made:
        made_session.close()
