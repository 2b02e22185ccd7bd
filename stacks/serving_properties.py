"""A DJL package's serving.properties, read as DJL Serving reads it (java.util.Properties.load).

The one reader of that file: the config check (stacks/config.py), the DJL test double (tests/models/djl_double.py),
local mode and the tests that compare a package's file with what the stack sets all use it. Plain standard
library, so every virtual environment can import it."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGES_DIR = Path(__file__).resolve().parents[1] / "model_packages"
OPTION_PREFIX = "option."
_KEY_VALUE = re.compile(r"((?:[^\\=:\s]|\\.)+)\s*[=:\s]?\s*(.*)")


def read_properties(text: str) -> dict[str, str]:
    """java.util.Properties.load for what a serving.properties holds: `key=value`, `key: value` or `key value`
    lines, `#`/`!` comments, a trailing backslash continuing the line, surrounding blanks dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    props: dict[str, str] = {}
    for line in logical:
        match = _KEY_VALUE.match(line)
        if match:
            props[match.group(1).replace("\\", "")] = match.group(2).strip()
    return props


def options(props: dict[str, str]) -> dict[str, str]:
    """The `option.<name>` entries without their prefix: what the handler's initialisation request carries."""
    return {key[len(OPTION_PREFIX) :]: value for key, value in props.items() if key.startswith(OPTION_PREFIX)}


def package_properties(role: str, packages_dir: Path = PACKAGES_DIR) -> dict[str, str]:
    """model_packages/<role>/serving.properties (empty when the role has no DJL package)."""
    path = Path(packages_dir) / role / "serving.properties"
    return read_properties(path.read_text(encoding="utf-8")) if path.is_file() else {}


def package_options(role: str, packages_dir: Path = PACKAGES_DIR) -> dict[str, str]:
    """The options model_packages/<role>/serving.properties fixes, without the `option.` prefix."""
    return options(package_properties(role, packages_dir))
