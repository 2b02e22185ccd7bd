"""CloudFormation values as the text they resolve to (a unique module name: test folders share sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ACCOUNT = "123456789012"  # what {"Ref": "AWS::AccountId"} stands for in the tests' readings


def render(value: Any, other: Callable[[dict], str] | None = None) -> str:
    """`value` with Fn::Join parts joined and the account filled in (as CloudFormation would); any other token is
    `other(token)`'s text, or an error where the caller expects none."""
    if isinstance(value, str):
        return value
    if value == {"Ref": "AWS::AccountId"}:
        return ACCOUNT
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part, other) for part in parts)
    if other is None:
        raise AssertionError(f"unexpected token {value}")
    return other(value)
