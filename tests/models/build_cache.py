"""Tiny models built once and reused (the Whisper tests, local mode): a directory named by a hash of what built it,
built in a private staging directory and renamed into place, so a concurrent builder never sees a half-written
model and an edited builder builds anew."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

COMPLETE = ".complete"  # written last: the directory is whole


def cached_build(root: Path, name: str, key: bytes, build: Callable[[Path], object]) -> Path:
    """root/<name>-<sha256(key)[:12]>, made by `build(directory)` on first use and reused afterwards."""
    target = root / f"{name}-{hashlib.sha256(key).hexdigest()[:12]}"
    if (target / COMPLETE).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".building-{name}-", dir=root))
    try:
        build(staging / "model")
        (staging / "model" / COMPLETE).write_text("ok\n")
        try:
            os.replace(staging / "model", target)
        except OSError:  # another process finished first
            if not (target / COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
