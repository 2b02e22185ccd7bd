"""A DJL model package (model_packages/<name>/: serving.properties, model.py, requirements.txt, data) as a
model.tar.gz S3 asset, built at synth in Python: no Docker, deterministic bytes, so an unchanged package
keeps its asset hash and does not redeploy its endpoint.

Vendored dependencies (docs/operations.md, "Isolated containers"): `make packages` installs each package's
hash-pinned requirements.txt for the LMI container's platform (x86_64 manylinux, its CPython) into
build/vendor/<name>/; when that folder exists, the tarball carries it as vendor/ (with the pins as
vendor/requirements.txt) and no top-level requirements.txt, so DJL installs nothing at start-up and the worker puts
vendor/ first on sys.path (model_packages/shared/vlp_vendor.py). Without it (a plain synth, the tests), the package
keeps requirements.txt and DJL pip-installs the same pins at start-up."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_DIR = ROOT / "model_packages"
SHARED_DIR = PACKAGES_DIR / "shared"  # modules every package gets at its root (e.g. the DJL plumbing)
_SKIPPED = {"__pycache__", ".pytest_cache", "tests"}


def package_files(source: Path) -> list[Path]:
    """The files that go into a package, sorted, caches and tests left out."""
    return sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and not _SKIPPED.intersection(path.relative_to(source).parts) and path.suffix != ".pyc"
    )


VENDOR_REQUIREMENTS = "vendor/requirements.txt"  # where the pins go when the package is vendored


def write_model_tarball(
    source: Path, target: Path, shared: Path | None = SHARED_DIR, vendor: Path | None = None
) -> Path:
    """Write `source` (plus the shared modules at its root, plus `vendor` as vendor/) as a gzip tar with fixed
    metadata (mtime 0, root owner, 0644), so the bytes depend on the contents alone. Streamed: a vendored package
    is hundreds of MB."""
    members = {str(path.relative_to(source)): path for path in package_files(source)}
    if shared is not None and shared.is_dir():
        for path in package_files(shared):
            members.setdefault(str(path.relative_to(shared)), path)
    if vendor is not None:
        # DJL pip-installs a top-level requirements.txt at start-up: the pins move under vendor/ instead.
        pins = members.pop("requirements.txt", None)
        members.update({f"vendor/{path.relative_to(vendor)}": path for path in _vendor_files(vendor)})
        if pins is not None:
            members[VENDOR_REQUIREMENTS] = pins
    with (
        open(target, "wb") as out,
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(path, "rb") as data:
                tar.addfile(info, data)
    return target


def _vendor_files(vendor: Path) -> list[Path]:
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


BUILD_DIR = ROOT / "build" / "model-packages"
VENDOR_DIR = ROOT / "build" / "vendor"  # make packages: build/vendor/<package>/ (installed wheels)
VENDOR_MARKER = ".vendored"  # written last by make packages: a half-finished install is not picked up


def vendored(package: str, vendor_dir: Path | None = VENDOR_DIR) -> Path | None:
    """build/vendor/<package>/ when `make packages` completed it, else None."""
    if vendor_dir is None:
        return None
    folder = vendor_dir / package
    return folder if (folder / VENDOR_MARKER).is_file() else None


def build_package(package: str, build_dir: Path = BUILD_DIR, vendor_dir: Path | None = VENDOR_DIR) -> Path:
    """Build model_packages/<package> into build/model-packages/<package>/model.tar.gz (what SageMaker extracts
    into /opt/ml/model), with its vendored dependencies when `make packages` built them. Pure Python, so synth
    needs no Docker; the bytes are deterministic, so an unchanged package keeps its asset hash."""
    source = PACKAGES_DIR / package
    if not (source / "model.py").is_file():
        raise FileNotFoundError(f"{source / 'model.py'} is missing: the {package} endpoint serves it")
    target = build_dir / package / "model.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_model_tarball(source, target, vendor=vendored(package, vendor_dir))


class ModelPackageAsset(Construct):
    """`asset.s3_object_url` is the ModelDataUrl of a DJL model."""

    def __init__(self, scope: Construct, construct_id: str, *, package: str) -> None:
        super().__init__(scope, construct_id)
        self.asset = s3_assets.Asset(self, "Package", path=str(build_package(package)))


if __name__ == "__main__":
    # `python -m stacks.model_package_asset`: build every DJL package, as synth does.
    for name in sorted(p.parent.name for p in PACKAGES_DIR.glob("*/serving.properties")):
        print(build_package(name).relative_to(ROOT))
