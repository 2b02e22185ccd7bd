"""What goes into a DJL model package, and the S3 bundle a network-isolated DJL role is served from.

Plain standard library (no aws_cdk), so the staging command (model_packages/stage_weights.py, in .venv-models) and
the operator commands (ops/) compute the same names as synth does.

A DJL role with `network_isolation: true` runs from one uncompressed ModelDataSource S3 prefix,
`bundles/<role>/<package hash>/`, holding its package files (model.py, serving.properties, the shared modules,
vendor/ from `make packages`) and its weights under `weights/`. SageMaker copies the prefix into /opt/ml/model
(each key trimmed by the prefix), so `option.model_id` is the local directory /opt/ml/model/weights and the
container reads nothing from the network. The hash names the prefix: a code change is a new prefix and a new
Model, and the old prefix stays for a rollback (docs/operations.md, "Network-isolated DJL roles").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stacks import constants as c

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_DIR = ROOT / "model_packages"
SHARED_DIR = PACKAGES_DIR / "shared"  # modules every package gets at its root (e.g. the DJL plumbing)
VENDOR_DIR = ROOT / "build" / "vendor"  # make packages: build/vendor/<package>/ (installed wheels)
VENDOR_MARKER = ".vendored"  # written last by make packages: a half-finished install is not picked up
VENDOR_REQUIREMENTS = "vendor/requirements.txt"  # where the pins go when the package is vendored
MODEL_DIR = "/opt/ml/model"  # where SageMaker puts ModelDataSource / ModelDataUrl contents
# Bumped when the bundle's layout changes (what the hash covers, where things go), so old prefixes are not reused.
BUNDLE_LAYOUT = "vlp-djl-bundle-1"
HASH_LENGTH = 20  # hex digits of the SHA-256 kept in the prefix name (80 bits)
_SKIPPED = {"__pycache__", ".pytest_cache", "tests"}


def package_files(source: Path) -> list[Path]:
    """The files that go into a package, sorted, caches and tests left out."""
    return sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and not _SKIPPED.intersection(path.relative_to(source).parts) and path.suffix != ".pyc"
    )


def vendor_files(vendor: Path) -> list[Path]:
    """Every regular file of an installed-packages folder (byte code and console scripts left out)."""
    return sorted(
        path
        for path in vendor.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and path.suffix != ".pyc"
        and "__pycache__" not in path.parts
        and path.relative_to(vendor).parts[0] != "bin"
    )


def package_members(source: Path, shared: Path | None = SHARED_DIR, vendor: Path | None = None) -> dict[str, Path]:
    """Name in the package -> file: `source`'s files, the shared modules at its root (the package's own file wins),
    and, when vendored, `vendor` as vendor/ with the pins moved to vendor/requirements.txt (DJL pip-installs a
    top-level requirements.txt at start-up)."""
    members = {path.relative_to(source).as_posix(): path for path in package_files(source)}
    if shared is not None and shared.is_dir():
        for path in package_files(shared):
            members.setdefault(path.relative_to(shared).as_posix(), path)
    if vendor is not None:
        pins = members.pop("requirements.txt", None)
        members.update({f"vendor/{path.relative_to(vendor).as_posix()}": path for path in vendor_files(vendor)})
        if pins is not None:
            members[VENDOR_REQUIREMENTS] = pins
    return members


def vendored(package: str, vendor_dir: Path | None = VENDOR_DIR) -> Path | None:
    """build/vendor/<package>/ when `make packages` completed it, else None."""
    if vendor_dir is None:
        return None
    folder = vendor_dir / package
    return folder if (folder / VENDOR_MARKER).is_file() else None


def package_hash(package: str, packages_dir: Path = PACKAGES_DIR, *, container: str = "") -> str:
    """The content hash that names a package's bundle: SHA-256 over every file the package ships (its source, its
    requirements.txt lock, the shared modules `packages_dir`/shared), by name and bytes, in name order, and the LMI
    `container` version it is served by (a new container may run another CPython: new vendored wheels, new bundle).
    Offline and deterministic: the same at synth, in the staging command and in preflight, on any machine, with or
    without `make packages` (the vendored wheels are fixed by the lock and the container)."""
    source = packages_dir / package
    if not (source / "model.py").is_file():
        raise FileNotFoundError(f"{source / 'model.py'} is missing: the {package} endpoint serves it")
    digest = hashlib.sha256(f"{BUNDLE_LAYOUT}\0container={container}\0".encode())
    for name, path in sorted(package_members(source, packages_dir / "shared").items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:HASH_LENGTH]


def bundle_prefix(role: str, digest: str) -> str:
    """The bundle's key prefix in the artifacts bucket: bundles/<role>/<hash>/."""
    return f"{c.BUNDLES_PREFIX}{role}/{digest}/"


def role_bundle_prefix(role: str, container: str, packages_dir: Path = PACKAGES_DIR) -> str:
    """bundles/<role>/<hash of model_packages/<role> and its LMI container version>/: what the role's Model reads."""
    return bundle_prefix(role, package_hash(role, packages_dir, container=container))


def bundle_weights_prefix(prefix: str) -> str:
    """Where the weights go inside a bundle prefix."""
    return f"{prefix}{c.BUNDLE_WEIGHTS_DIR}/"


BUNDLE_MODEL_ID = f"{MODEL_DIR}/{c.BUNDLE_WEIGHTS_DIR}"  # option.model_id of a bundled role: a local directory
