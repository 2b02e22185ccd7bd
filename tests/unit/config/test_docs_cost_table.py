"""docs/operations.md carries the cost table generated from the shipped configs."""

from __future__ import annotations

from pathlib import Path

from stacks.config import load_all
from stacks.cost import cost_rows, cost_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def test_operations_doc_has_the_current_cost_table():
    text = DOC.read_text()
    table = text.split("<!-- cost-table:start -->\n")[1].split("<!-- cost-table:end -->")[0]
    assert table == cost_table(load_all()), "run: python -m stacks.cost, and paste it into docs/operations.md"


def test_cost_scales_with_instances():
    prod = {c.name: c for c in load_all()}["prod"]
    rows = {r[0]: r for r in cost_rows(prod)}
    _role, instance, low, high, each, at_min, at_max, idle = rows["vlm"]
    assert instance == "ml.g5.12xlarge" and each > rows["llm"][4]
    assert at_min == each * low and at_max == each * high
    assert idle == at_min * 730 > 0  # prod keeps one instance per endpoint: it costs even without requests
    dev = {c.name: c for c in load_all()}["dev"]
    assert sum(r[5] for r in cost_rows(dev)) == 0  # scale to zero: nothing at idle
    assert sum(r[7] for r in cost_rows(dev)) == 0
