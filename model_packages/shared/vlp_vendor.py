"""Vendored dependencies first: imported by each model.py before any third-party module.

`make packages` installs a package's pinned requirements (built for the LMI container: x86_64 manylinux, its
CPython) into vendor/ inside model.tar.gz and leaves out the top-level requirements.txt, so DJL installs nothing at
start-up (an endpoint needs no internet). This puts vendor/ at the front of sys.path, ahead of the container's own
site-packages; vlp_requirements then checks the pins (vendor/requirements.txt) against what imports resolve to.
Without vendor/ (a package synthesized without `make packages`, the tests) it does nothing.

Plain standard library, copied into every package like the other shared modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

VENDOR = "vendor"
MARKER = ".vendored"  # written by make packages: the CPython version the wheels were chosen for, e.g. "3.12"


def use_vendor(package_dir: Path, version: tuple[int, int] | None = None) -> Path | None:
    """Put `package_dir`/vendor first on sys.path; refuse wheels built for another CPython."""
    folder = package_dir / VENDOR
    marker = folder / MARKER
    if not marker.is_file():
        return None
    built_for = marker.read_text(encoding="utf-8").strip()
    running = "{}.{}".format(*(version or sys.version_info[:2]))
    if built_for != running:
        raise RuntimeError(
            f"{folder}: dependencies vendored for CPython {built_for}, but this container runs {running}: "
            f"rebuild with `make packages LMI_PYTHON={running}`"
        )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return folder


use_vendor(Path(__file__).resolve().parent)
