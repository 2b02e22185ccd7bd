"""Stage a network-isolated DJL role's bundle: `bundles/<role>/<package hash>/` in the artifacts bucket.

    make stage-weights ENV=prod ROLE=grounded_sam   # weights/<role>/ first (if empty), then the bundle

The bundle is what SageMaker copies, uncompressed, into the role's /opt/ml/model (stacks/model_bundle.py): the
package files as the model.tar.gz asset has them (model.py, serving.properties, the shared modules) with the
dependencies `make packages` vendored for the LMI container (vendor/, so the container installs nothing), and the
weights under weights/, copied server-side (CopyObject, no download) from the staged weights/<role>/ prefix.
A manifest written last marks the bundle complete; preflight looks for it. A re-run skips every object already
there with the same size, so an interrupted staging resumes where it stopped.

Plain boto3 and the standard library: runs in .venv-models (make stage-weights) and .venv (preflight, tests).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks import constants as c
from stacks.config import EnvironmentConfig
from stacks.model_bundle import (
    PACKAGES_DIR,
    VENDOR_DIR,
    bundle_weights_prefix,
    package_hash,
    package_members,
    role_bundle_prefix,
    vendored,
)
from stacks.model_environment import network_isolated

log = logging.getLogger("stage_weights")

MANIFEST = "bundle-manifest.json"  # written last: a bundle without it is incomplete


@dataclass(frozen=True)
class Bundle:
    role: str
    prefix: str  # bundles/<role>/<hash>/
    weights_prefix: str  # weights/<role>/: the staged weights, copied into <prefix>weights/
    container: str = ""  # the role's LMI container_version (part of the hash)

    @property
    def manifest_key(self) -> str:
        return self.prefix + MANIFEST


@dataclass
class Staged:
    """What one bundle's staging did: objects uploaded (package files), copied (weights) and skipped (present)."""

    bundle: Bundle
    uploaded: int = 0
    copied: int = 0
    skipped: int = 0


def bundle_plan(
    config: EnvironmentConfig, roles: Iterable[str] | None = None, packages_dir: Path | None = None
) -> list[Bundle]:
    """One Bundle per enabled DJL role that runs network-isolated (its weights are an S3 prefix)."""
    wanted = set(roles) if roles else None
    packages_dir = packages_dir or PACKAGES_DIR
    bundles = []
    for role, model in config.models.enabled():
        if role not in c.DJL_ROLES or not network_isolated(role, model) or (wanted and role not in wanted):
            continue
        assert model.weights is not None and model.weights.s3_prefix is not None  # network_isolated checked it
        prefix = role_bundle_prefix(role, model.container_version, packages_dir)
        bundles.append(Bundle(role, prefix, model.weights.s3_prefix, model.container_version))
    return bundles


def _existing(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Key -> size of every object under `prefix`."""
    found: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return found


def stage_bundle(
    s3: Any,
    bucket: str,
    bundle: Bundle,
    *,
    packages_dir: Path | None = None,
    vendor_dir: Path | None = None,
    dry_run: bool = False,
) -> Staged:
    """Upload the package (vendored) and copy the staged weights into the bundle prefix, skipping what is there."""
    role = bundle.role
    packages_dir = packages_dir or PACKAGES_DIR
    vendor = vendored(role, vendor_dir or VENDOR_DIR)
    if vendor is None and dry_run:
        log.warning("%s: build/vendor/%s missing: `make packages` must run before the bundle is staged", role, role)
        return Staged(bundle)
    if vendor is None:
        raise SystemExit(
            f"{role}: build/vendor/{role} is missing or incomplete: run `make packages` first (a network-isolated "
            "container installs nothing, so its bundle must carry the vendored dependencies)"
        )
    digest = package_hash(role, packages_dir, container=bundle.container)
    if not bundle.prefix.endswith(f"/{digest}/"):
        raise SystemExit(f"{role}: model_packages/{role} changed since the plan ({bundle.prefix}): run again")
    weights = _existing(s3, bucket, bundle.weights_prefix)
    if not weights and not dry_run:
        raise SystemExit(
            f"{role}: no staged weights under s3://{bucket}/{bundle.weights_prefix}: stage them first "
            f"(make stage-weights ENV=<env> ROLE={role})"
        )
    present = _existing(s3, bucket, bundle.prefix)
    staged = Staged(bundle)
    log.info("%s: bundle s3://%s/%s (%d objects already there)", role, bucket, bundle.prefix, len(present))
    members = package_members(packages_dir / role, packages_dir / "shared", vendor)
    for name, path in sorted(members.items()):
        key = bundle.prefix + name
        if present.get(key) == path.stat().st_size:
            staged.skipped += 1
            continue
        if not dry_run:
            s3.upload_file(str(path), bucket, key)
        staged.uploaded += 1
    target = bundle_weights_prefix(bundle.prefix)
    for key, size in sorted(weights.items()):
        copy = target + key[len(bundle.weights_prefix) :]
        if present.get(copy) == size:
            staged.skipped += 1
            continue
        if not dry_run:
            # Managed copy: server-side CopyObject / UploadPartCopy for objects over 5 GB; nothing is downloaded.
            s3.copy({"Bucket": bucket, "Key": key}, bucket, copy)
        staged.copied += 1
    if not dry_run and (staged.uploaded or staged.copied or bundle.manifest_key not in present):
        manifest = {
            "role": role,
            "package_hash": digest,
            "container_version": bundle.container,
            "package_files": len(members),
            "weights_from": bundle.weights_prefix,
            "weights_objects": len(weights),
            "model_id": f"/opt/ml/model/{c.BUNDLE_WEIGHTS_DIR}",
        }
        s3.put_object(Bucket=bucket, Key=bundle.manifest_key, Body=json.dumps(manifest, indent=2).encode())
    log.info(
        "%s: %d package files uploaded, %d weight objects copied, %d skipped (already there)",
        role,
        staged.uploaded,
        staged.copied,
        staged.skipped,
    )
    return staged


def stage_bundles(
    config: EnvironmentConfig,
    *,
    s3: Any,
    bucket: str,
    roles: Iterable[str] | None = None,
    packages_dir: Path | None = None,
    vendor_dir: Path | None = None,
    dry_run: bool = False,
) -> list[Staged]:
    """Every planned bundle in turn (each role's weights must be staged already)."""
    return [
        stage_bundle(s3, bucket, bundle, packages_dir=packages_dir, vendor_dir=vendor_dir, dry_run=dry_run)
        for bundle in bundle_plan(config, roles, packages_dir)
    ]
