"""`make smoke ENV=<env>`: signed calls through the project's client (vlp_client): describe, segment and a job on
examples/red-square.png, each call's latency printed; exit non-zero on the first failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.common import ROOT, OpsError

IMAGE = ROOT / "examples" / "red-square.png"


@dataclass(frozen=True)
class Call:
    name: str
    seconds: float
    detail: str


def _timed(name: str, action: Callable[[], str], clock: Callable[[], float]) -> Call:
    from vlp_client import VlpError

    start = clock()
    try:
        detail = action()
    except VlpError as error:
        raise OpsError(f"smoke {name} failed after {clock() - start:.2f} s: {error}") from None
    return Call(name, clock() - start, detail)


def smoke(
    client: Any,
    console: Console,
    *,
    image: Path = IMAGE,
    job_timeout: float = 900,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Call]:
    """Three calls through `client` (a vlp_client.VlpClient); returns them with their latencies."""
    data = image.read_bytes()

    def describe() -> str:
        result = client.analyze(data, task="describe")
        return f"{result.task}: {(result.answer or '')[:60]!r}"

    def segment() -> str:
        result = client.analyze(data, text="the red square", task="segment")
        return f"{result.task}: {len(result.detections)} detection(s)"

    def job() -> str:
        submitted = client.submit_job(data, task="describe")
        done = client.wait(submitted.job_id, timeout=job_timeout)
        done.raise_for_error()
        return f"job {done.job_id} {done.status}"

    calls = [
        _timed(name, action, clock) for name, action in (("describe", describe), ("segment", segment), ("job", job))
    ]
    table = Table(title=f"smoke {client.api_url}")
    for column in ("call", "latency", "result"):
        table.add_column(column)
    for call in calls:
        table.add_row(call.name, f"{call.seconds:.2f} s", call.detail)
    console.print(table)
    return calls
