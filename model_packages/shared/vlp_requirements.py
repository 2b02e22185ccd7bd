"""A worker runs only with the exact versions its package pins.

DJL installs a package's requirements.txt when the worker starts (`pip install -r requirements.txt`, PyEnv in
djl-serving) and only logs a failed install, so a worker could otherwise serve with whatever the container
happens to ship. requirements.txt pins, with hashes, the versions tests/models ran (make lock compiles it from
requirements.in against requirements/models.txt); `verify_installed` refuses to start a worker whose Python
environment differs, so the endpoint fails its health check instead of serving untested code.

Plain standard library (plus `packaging`, a transformers dependency), copied into every package like the other
shared modules.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: `Scikit_Learn` and `scikit-learn` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(requirements: Path) -> dict[str, str]:
    """`name==version` requirements of a pip requirements file (hash and comment lines ignored)."""
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical_name(match.group(1))] = match.group(2)
    return pins


def _same_version(installed: str, pinned: str) -> bool:
    try:
        from packaging.version import Version

        return Version(installed) == Version(pinned)
    except Exception:  # an unparsable version: compare the strings
        return installed == pinned


def mismatches(pins: dict[str, str]) -> list[str]:
    """One line per pin the running environment does not satisfy exactly."""
    wrong = []
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}=={version} (not installed)")
            continue
        if not _same_version(installed, version):
            wrong.append(f"{name}=={version} (installed: {installed})")
    return wrong


def verify_installed(package_dir: str | Path) -> None:
    """Raise unless every pin of `package_dir`/requirements.txt (vendor/requirements.txt in a vendored package) is
    installed at exactly that version."""
    requirements = Path(package_dir) / "requirements.txt"
    if not requirements.is_file() and (Path(package_dir) / "vendor" / "requirements.txt").is_file():
        requirements = Path(package_dir) / "vendor" / "requirements.txt"  # vendored by make packages (vlp_vendor)
    if not requirements.is_file():
        raise FileNotFoundError(f"{requirements} is missing: the package pins what its worker runs there")
    wrong = mismatches(read_pins(requirements))
    if wrong:
        raise RuntimeError(
            f"{requirements}: this Python environment is not the one the package was tested with (did DJL's "
            f"`pip install -r requirements.txt` fail? see the log above): {'; '.join(wrong)}"
        )
