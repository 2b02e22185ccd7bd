"""make smoke's failure path without a network: a call that fails names the call and its error code (the happy path
runs against local mode in tests/local/test_ops_smoke.py)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from vlp_client import VlpError

from ops.common import OpsError
from ops.smoke import smoke


class FailingSegment:
    api_url = "http://127.0.0.1:1"

    def analyze(self, data: bytes, **kwargs: Any) -> Any:
        if kwargs.get("task") == "segment":
            raise VlpError("MODEL_ERROR", "the segmentation model failed", status=502)
        return type("Result", (), {"task": "describe", "answer": "a red square"})()


def test_a_failing_call_stops_the_smoke_test_with_its_name_and_code():
    ticks = iter([0.0, 0.25, 1.0, 3.5])
    with pytest.raises(OpsError, match=r"smoke segment failed after 2\.50 s: MODEL_ERROR"):
        smoke(FailingSegment(), Console(file=io.StringIO()), clock=lambda: next(ticks))
