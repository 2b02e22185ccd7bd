"""The lint gate's own rules (docs/decisions.md, "the lint, type and socket gates"), which ruff and mypy do not
check themselves: every per-line ignore says why, and mypy's two environments split bench/ the way the
benchmarks run."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SKIPPED_DIRS = {".git", ".venv", ".venv-models", ".venv-demo", "node_modules", "build", "cdk.out", ".local"}
# a noqa or type-ignore pragma, then what must follow it on the same line: a reason, as `(why)` or `# why`
IGNORE = re.compile(r"#\s*(?:noqa\b(?::\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore\b(?:\[[a-z, -]+\])?)")
REASON = re.compile(r"^\s*(?:\(\S[^)]*\)|#\s*\S)")


def _python_files() -> list[Path]:
    here = Path(__file__).resolve()  # its examples are pragmas on purpose
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".venv")]
        found += [Path(folder) / name for name in files if name.endswith(".py")]
    return sorted(path for path in found if path != here)


def unexplained_ignores(text: str) -> list[int]:
    """Line numbers of noqa / type-ignore pragmas without a reason after them."""
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in IGNORE.finditer(line):
            if not REASON.match(line[match.end() :]):
                lines.append(number)
    return lines


def test_the_reason_check_tells_explained_from_bare_ignores():
    assert unexplained_ignores("import x  # noqa: E402 (after the sys.path set-up)") == []
    assert unexplained_ignores("y = f()  # type: ignore[call-arg]  # transformers @wraps .to()") == []
    assert unexplained_ignores("import x  # noqa: E402") == [1]
    assert unexplained_ignores("ok = 1\ny = f()  # type: ignore[arg-type]\n") == [2]
    assert unexplained_ignores("y = f()  # type: ignore") == [1]
    assert unexplained_ignores("z = 1  # noqa: S105, S106") == [1]


def test_every_inline_ignore_gives_its_reason():
    files = _python_files()
    assert len(files) > 100  # the walk found the tree
    bare = {
        f"{path.relative_to(ROOT)}:{line}"
        for path in files
        for line in unexplained_ignores(path.read_text(encoding="utf-8"))
    }
    assert not bare, f"say why on the same line, e.g. `# noqa: S105 (a message, not a secret)`: {sorted(bare)}"


def test_mypy_splits_bench_by_the_venv_each_benchmark_runs_in():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    excluded = [re.compile(pattern) for pattern in config["exclude"]]
    benchmarks = sorted((ROOT / "bench").glob("*.py"))
    models_venv = {
        path.name for path in benchmarks if re.search(r"^# venv: models$", path.read_text(encoding="utf-8"), re.M)
    }
    assert models_venv  # make lint checks these with .venv-models' interpreter (Makefile: BENCH_MODELS)
    skipped_here = {path.name for path in benchmarks if any(p.search(f"bench/{path.name}") for p in excluded)}
    assert skipped_here == models_venv
