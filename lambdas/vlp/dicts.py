"""Dependency-free helpers for JSON-like dicts (the Lambda code and the CDK app's config both use them)."""

from __future__ import annotations

from typing import Any


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top: where both hold an object the two merge, recursively; any other value of
    ``override`` replaces ``base``'s. Neither argument is changed (nested values ``override`` does not touch are
    shared with ``base``)."""
    merged = dict(base)
    for name, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = deep_merge(merged[name], value)
        else:
            merged[name] = value
    return merged
