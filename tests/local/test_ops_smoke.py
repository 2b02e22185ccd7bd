"""make smoke against local mode: `python -m ops smoke --api-url <local> --auth iam` makes SigV4-signed describe,
segment and job calls through vlp_client and prints each call's latency; with wrong credentials it fails in one
line naming the call."""

from __future__ import annotations

import io
import re
import sys

import pytest
from rich.console import Console
from vlp_local_kit import ApiProcess

from local.common import ROOT

sys.path.insert(0, str(ROOT / "client" / "src"))
sys.path.insert(0, str(ROOT))

from ops.__main__ import main


@pytest.fixture(scope="module")
def signed_api(stack, tmp_path_factory):
    api = ApiProcess(stack, tmp_path_factory.mktemp("ops-iam") / ".local", "iam")
    yield api
    api.stop()


def _aws_env(monkeypatch, key_id: str, secret: str) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)


def test_smoke_makes_signed_calls_and_prints_their_latencies(signed_api, monkeypatch, capsys):
    credentials = signed_api.credentials
    _aws_env(monkeypatch, credentials["aws_access_key_id"], credentials["aws_secret_access_key"])
    out = io.StringIO()
    status = main(
        ["smoke", "--env", "dev", "--api-url", signed_api.url, "--auth", "iam"],
        console=Console(file=out, width=200, color_system=None),
    )
    assert status == 0, capsys.readouterr().err
    table = out.getvalue()
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"│ (describe|segment|job)\s*│ ([0-9.]+) s", table)}
    assert set(rows) == {"describe", "segment", "job"}, table
    assert all(seconds > 0 for seconds in rows.values())
    assert "describe: " in table and "segment: " in table and re.search(r"job \S+ succeeded", table)


def test_smoke_with_unknown_credentials_fails_in_one_line(signed_api, monkeypatch, capsys):
    _aws_env(monkeypatch, "AKIAUNKNOWN000000000", "not-the-secret")
    status = main(
        ["smoke", "--env", "dev", "--api-url", signed_api.url, "--auth", "iam"],
        console=Console(file=io.StringIO(), width=200),
    )
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: smoke describe failed after ") and err.count("\n") == 1
