"""A DJL model package (model_packages/<name>/: serving.properties, model.py, requirements.txt, data) as a
model.tar.gz S3 asset, built at synth in Python: no Docker, deterministic bytes, so an unchanged package
keeps its asset hash and does not redeploy its endpoint."""

from __future__ import annotations

import gzip
import io
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


def write_model_tarball(source: Path, target: Path, shared: Path | None = SHARED_DIR) -> Path:
    """Write `source` (plus the shared modules at its root) as a gzip tar with fixed metadata (mtime 0, root owner,
    0644), so the bytes depend on the contents alone."""
    members = {str(path.relative_to(source)): path for path in package_files(source)}
    if shared is not None and shared.is_dir():
        for path in package_files(shared):
            members.setdefault(str(path.relative_to(shared)), path)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(members.items()):
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    with open(target, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return target


BUILD_DIR = ROOT / "build" / "model-packages"


def build_package(package: str, build_dir: Path = BUILD_DIR) -> Path:
    """Build model_packages/<package> into build/model-packages/<package>/model.tar.gz (what SageMaker extracts
    into /opt/ml/model). Pure Python, so synth needs no Docker; the bytes are deterministic, so an unchanged
    package keeps its asset hash."""
    source = PACKAGES_DIR / package
    if not (source / "model.py").is_file():
        raise FileNotFoundError(f"{source / 'model.py'} is missing: the {package} endpoint serves it")
    target = build_dir / package / "model.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_model_tarball(source, target)


class ModelPackageAsset(Construct):
    """`asset.s3_object_url` is the ModelDataUrl of a DJL model."""

    def __init__(self, scope: Construct, construct_id: str, *, package: str) -> None:
        super().__init__(scope, construct_id)
        self.asset = s3_assets.Asset(self, "Package", path=str(build_package(package)))


if __name__ == "__main__":
    # `python -m stacks.model_package_asset`: build every DJL package, as synth does.
    for name in sorted(p.parent.name for p in PACKAGES_DIR.glob("*/serving.properties")):
        print(build_package(name).relative_to(ROOT))
