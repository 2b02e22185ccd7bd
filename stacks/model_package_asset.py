"""A DJL model package (model_packages/<name>/: serving.properties, model.py, requirements.txt, data) as a
model.tar.gz S3 asset, built at synth in Python: no Docker, deterministic bytes, so an unchanged package
keeps its asset hash and does not redeploy its endpoint.

Vendored dependencies (docs/operations.md, "Isolated containers"): `make packages` installs each package's
hash-pinned requirements.txt for the LMI container's platform (x86_64 manylinux, its CPython) into
build/vendor/<name>/; when that folder exists, the tarball carries it as vendor/ (with the pins as
vendor/requirements.txt) and no top-level requirements.txt, so DJL installs nothing at start-up and the worker puts
vendor/ first on sys.path (model_packages/shared/vlp_vendor.py). Without it (a plain synth, the tests), the package
keeps requirements.txt and DJL pip-installs the same pins at start-up.

A DJL role with `network_isolation: true` uses no asset: it runs from the S3 bundle `make stage-weights` stages
(the same members plus its weights, uncompressed; stacks/model_bundle.py)."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from stacks.model_bundle import (  # re-exported: the package layout lives in stacks/model_bundle.py (no aws_cdk)
    PACKAGES_DIR,
    ROOT,
    SHARED_DIR,
    VENDOR_DIR,
    VENDOR_MARKER,
    package_members,
    vendored,
)

__all__ = [
    "PACKAGES_DIR",
    "SHARED_DIR",
    "VENDOR_DIR",
    "VENDOR_MARKER",
    "ModelPackageAsset",
    "build_package",
    "write_model_tarball",
]


def write_model_tarball(
    source: Path, target: Path, shared: Path | None = SHARED_DIR, vendor: Path | None = None
) -> Path:
    """Write `source` (plus the shared modules at its root, plus `vendor` as vendor/) as a gzip tar with fixed
    metadata (mtime 0, root owner, 0644), so the bytes depend on the contents alone. Streamed: a vendored package
    is hundreds of MB."""
    members = package_members(source, shared, vendor)
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


BUILD_DIR = ROOT / "build" / "model-packages"


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
