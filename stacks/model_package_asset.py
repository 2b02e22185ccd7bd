"""A DJL model package (model_packages/<name>/: serving.properties, model.py, requirements.txt, data) as a
model.tar.gz S3 asset, built at synth in Python: no Docker, deterministic bytes, so an unchanged package
keeps its asset hash and does not redeploy its endpoint."""
from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_DIR = ROOT / "model_packages"
_SKIPPED = {"__pycache__", ".pytest_cache", "tests"}


def package_files(source: Path) -> list[Path]:
    """The files that go into a package, sorted, caches and tests left out."""
    return sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and not _SKIPPED.intersection(path.relative_to(source).parts) and path.suffix != ".pyc"
    )


def write_model_tarball(source: Path, target: Path) -> Path:
    """Write `source` as a gzip tar with fixed metadata (mtime 0, root owner, 0644/0755)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in package_files(source):
            info = tarfile.TarInfo(str(path.relative_to(source)))
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    with open(target, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return target


@jsii.implements(cdk.ILocalBundling)
class _TarballBundler:
    def __init__(self, source: Path) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, *, image=None, **_options) -> bool:  # noqa: ARG002 (jsii signature)
        write_model_tarball(self._source, Path(output_dir) / "model.tar.gz")
        return True


class ModelPackageAsset(Construct):
    """`asset.s3_object_url` is the ModelDataUrl of a DJL model."""

    def __init__(self, scope: Construct, construct_id: str, *, package: str) -> None:
        super().__init__(scope, construct_id)
        source = PACKAGES_DIR / package
        if not (source / "model.py").is_file():
            raise FileNotFoundError(f"{source / 'model.py'} is missing: the {package} endpoint serves it")
        self.asset = s3_assets.Asset(
            self,
            "Package",
            path=str(source),
            asset_hash_type=cdk.AssetHashType.SOURCE,
            exclude=sorted(_SKIPPED) + ["*.pyc"],
            bundling=cdk.BundlingOptions(
                # Never pulled: local bundling always succeeds, so synth needs no Docker.
                image=cdk.DockerImage.from_registry("local-bundling-only"),
                local=_TarballBundler(source),
                output_type=cdk.BundlingOutput.SINGLE_FILE,
            ),
        )
