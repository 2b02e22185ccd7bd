"""Network-isolated DJL bundles: the package hash that names them (offline, deterministic), and their staging
into a moto S3 bucket (the file list, weights copied server-side, a re-run that skips what is there)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from rich.console import Console

from ops import bundles as ops_bundles
from ops.bundles import MANIFEST, Bundle, bundle_plan, stage_bundle, stage_bundles
from ops.common import OpsError
from ops.deploy import deploy
from ops.preflight import check_bundles
from stacks import constants as c
from stacks.model_bundle import (
    PACKAGES_DIR,
    ROOT,
    VENDOR_MARKER,
    bundle_prefix,
    package_hash,
    package_members,
)

ACCOUNT = "123456789012"  # the stubbed caller (tests/unit/ops/conftest.py)
ROLE = c.MODEL_GROUNDED_SAM
WEIGHTS = {  # the staged weights/<role>/ layout (model_packages/stage_weights.py): one folder per component
    "grounding_dino/config.json": b'{"model_type": "grounding-dino"}',
    "grounding_dino/model.safetensors": b"\x00" * 2048,
    "sam/config.json": b'{"model_type": "sam"}',
    "sam/model.safetensors": b"\x01" * 4096,
}


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    """A private copy of the role's package and the shared modules (the tree's own may change under the test)."""
    target = tmp_path / "model_packages"
    for name in (ROLE, "shared"):
        shutil.copytree(PACKAGES_DIR / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def vendor(tmp_path: Path) -> Path:
    """What `make packages` leaves in build/vendor/: installed modules, a console script, the marker last."""
    root = tmp_path / "vendor"
    folder = root / ROLE
    (folder / "tinylib").mkdir(parents=True)
    (folder / "tinylib" / "__init__.py").write_text("VERSION = '1.0'\n")
    (folder / "tinylib-1.0.dist-info").mkdir()
    (folder / "tinylib-1.0.dist-info" / "METADATA").write_text("Name: tinylib\nVersion: 1.0\n")
    (folder / "bin").mkdir()
    (folder / "bin" / "tinylib").write_text("#!/bin/sh\n")
    (folder / "tinylib" / "__pycache__").mkdir()
    (folder / "tinylib" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\x00")
    (folder / VENDOR_MARKER).write_text("3.12\n")
    return root


# ---- the hash ----


def test_package_hash_is_stable_across_runs_and_processes(packages):
    first = package_hash(ROLE, packages)
    assert first == package_hash(ROLE, packages)
    assert len(first) == 20 and int(first, 16) >= 0
    # Another interpreter (another PYTHONHASHSEED, another file-system walk order) computes the same name.
    code = "import sys; from pathlib import Path; from stacks.model_bundle import package_hash; "
    code += f"print(package_hash({ROLE!r}, Path(sys.argv[1])))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(packages)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == first


def test_package_hash_changes_with_each_kind_of_file_it_covers(packages):
    seen = {package_hash(ROLE, packages)}
    for path in (
        packages / ROLE / "model.py",  # the source
        packages / ROLE / "requirements.txt",  # the lock
        packages / "shared" / "vlp_vendor.py",  # a shared module the package ships with
    ):
        path.write_text(path.read_text() + "\n# changed\n")
        seen.add(package_hash(ROLE, packages))
    (packages / ROLE / "new_module.py").write_text("X = 1\n")  # a file added
    seen.add(package_hash(ROLE, packages))
    seen.add(package_hash(ROLE, packages, container="0.33.0"))  # another LMI container: other vendored wheels
    assert len(seen) == 6
    assert package_hash(ROLE, packages, container="0.33.0") == package_hash(ROLE, packages, container="0.33.0")


def test_package_hash_ignores_caches_tests_and_byte_code(packages):
    before = package_hash(ROLE, packages)
    for folder in ("__pycache__", "tests", ".pytest_cache"):
        (packages / ROLE / folder).mkdir()
        (packages / ROLE / folder / "junk.py").write_text("junk\n")
    (packages / ROLE / "model.cpython-312.pyc").write_bytes(b"\x00\x01")
    (packages / "shared" / "__pycache__").mkdir()
    (packages / "shared" / "__pycache__" / "vlp_vendor.cpython-312.pyc").write_bytes(b"\x00")
    assert package_hash(ROLE, packages) == before


def test_package_hash_does_not_depend_on_vendoring(packages, vendor):
    """Synth (no `make packages`) and the staging machine (vendored) must name the same prefix."""
    plain = package_members(packages / ROLE, packages / "shared")
    vendored = package_members(packages / ROLE, packages / "shared", vendor / ROLE)
    assert "requirements.txt" in plain and "requirements.txt" not in vendored
    assert package_hash(ROLE, packages) == package_hash(ROLE, packages)  # no vendor input at all
    with pytest.raises(FileNotFoundError, match=r"model\.py"):
        package_hash("no_such_package", packages)


def test_the_plan_names_one_bundle_per_isolated_djl_role(configs, packages):
    assert bundle_plan(configs["dev"]) == []  # dev keeps its DJL roles on the asset
    prod = configs["prod"]
    plan = bundle_plan(prod)
    isolated = [r for r, m in prod.models.enabled() if r in c.DJL_ROLES and m.network_isolation]
    assert [b.role for b in plan] == isolated and isolated
    for bundle in plan:
        container = getattr(prod.models, bundle.role).container_version
        assert bundle.prefix == bundle_prefix(bundle.role, package_hash(bundle.role, container=container))
        assert bundle.weights_prefix == getattr(prod.models, bundle.role).weights.s3_prefix
        assert bundle.manifest_key == bundle.prefix + MANIFEST
    (only,) = bundle_plan(prod, [ROLE], packages)
    container = getattr(prod.models, ROLE).container_version
    assert only.prefix == f"bundles/{ROLE}/{package_hash(ROLE, packages, container=container)}/"


# ---- staging (moto S3) ----

BUCKET = "vlp-prod-artifacts-123456789012-us-east-1"


class Recorded:
    """The S3 operations a client makes (botocore's before-call event), to tell copies from transfers."""

    def __init__(self, client) -> None:
        self.calls: list[str] = []
        client.meta.events.register("before-call.s3.*", self._record)

    def _record(self, model, **_kwargs) -> None:
        self.calls.append(model.name)


@pytest.fixture
def s3() -> Iterator:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for name, body in WEIGHTS.items():
            client.put_object(Bucket=BUCKET, Key=f"weights/{ROLE}/{name}", Body=body)
        yield client


def _keys(s3, prefix: str) -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _bundle(packages: Path) -> Bundle:
    return Bundle(ROLE, bundle_prefix(ROLE, package_hash(ROLE, packages)), f"weights/{ROLE}/")


def test_staging_lays_out_package_vendor_and_weights_and_copies_the_weights_server_side(s3, packages, vendor):
    bundle = _bundle(packages)
    calls = Recorded(s3)
    staged = stage_bundle(s3, BUCKET, bundle, packages_dir=packages, vendor_dir=vendor)
    during = list(calls.calls)
    keys = _keys(s3, bundle.prefix)
    names = {key[len(bundle.prefix) :] for key in keys}
    source = {p.relative_to(packages / ROLE).as_posix() for p in (packages / ROLE).iterdir() if p.is_file()}
    shared = {p.name for p in (packages / "shared").glob("*.py")}
    expected = (
        (source - {"requirements.txt"})
        | shared
        | {"vendor/requirements.txt", "vendor/tinylib/__init__.py", "vendor/tinylib-1.0.dist-info/METADATA"}
        | {f"vendor/{VENDOR_MARKER}"}
        | {f"{c.BUNDLE_WEIGHTS_DIR}/{name}" for name in WEIGHTS}
        | {MANIFEST}
    )
    assert names == expected
    assert {"model.py", "serving.properties"} <= names and "requirements.txt" not in names  # DJL installs nothing
    assert not any("__pycache__" in n or n.startswith("vendor/bin/") for n in names)
    for name, body in WEIGHTS.items():
        key = f"{bundle.prefix}{c.BUNDLE_WEIGHTS_DIR}/{name}"
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    pins = s3.get_object(Bucket=BUCKET, Key=bundle.prefix + "vendor/requirements.txt")["Body"].read()
    assert pins == (packages / ROLE / "requirements.txt").read_bytes()
    # The weights went bucket-to-bucket: copies, no GetObject of the weights.
    assert during.count("CopyObject") == len(WEIGHTS) and "GetObject" not in during
    assert (staged.copied, staged.skipped) == (len(WEIGHTS), 0)
    assert staged.uploaded == len(expected) - len(WEIGHTS) - 1  # everything but the weights and the manifest
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=bundle.manifest_key)["Body"].read())
    assert manifest["package_hash"] == package_hash(ROLE, packages)
    assert manifest["model_id"] == "/opt/ml/model/weights"


def test_a_rerun_skips_what_exists_and_resumes_an_interrupted_bundle(s3, packages, vendor):
    bundle = _bundle(packages)
    stage_bundle(s3, BUCKET, bundle, packages_dir=packages, vendor_dir=vendor)
    before = _keys(s3, bundle.prefix)
    calls = Recorded(s3)
    again = stage_bundle(s3, BUCKET, bundle, packages_dir=packages, vendor_dir=vendor)
    assert (again.uploaded, again.copied) == (0, 0) and again.skipped == len(before) - 1
    assert not {"PutObject", "CopyObject", "CreateMultipartUpload"} & set(calls.calls)
    # Interrupted: one weight copy and the manifest never made it.
    s3.delete_object(Bucket=BUCKET, Key=f"{bundle.prefix}{c.BUNDLE_WEIGHTS_DIR}/sam/model.safetensors")
    s3.delete_object(Bucket=BUCKET, Key=bundle.manifest_key)
    resumed = stage_bundle(s3, BUCKET, bundle, packages_dir=packages, vendor_dir=vendor)
    assert (resumed.uploaded, resumed.copied) == (0, 1)
    assert _keys(s3, bundle.prefix) == before


def test_a_package_change_stages_a_new_prefix_and_keeps_the_old_one(s3, packages, vendor, configs):
    (old,) = bundle_plan(configs["prod"], [ROLE], packages)
    stage_bundle(s3, BUCKET, old, packages_dir=packages, vendor_dir=vendor)
    (packages / ROLE / "model.py").write_text((packages / ROLE / "model.py").read_text() + "\n# v2\n")
    (new,) = bundle_plan(configs["prod"], [ROLE], packages)
    assert new.prefix != old.prefix
    stage_bundles(configs["prod"], s3=s3, bucket=BUCKET, roles=[ROLE], packages_dir=packages, vendor_dir=vendor)
    assert _keys(s3, old.manifest_key) and _keys(s3, new.manifest_key)  # the old one stays for a rollback
    with pytest.raises(SystemExit, match="changed since the plan"):
        stage_bundle(s3, BUCKET, old, packages_dir=packages, vendor_dir=vendor)


def test_staging_refuses_without_vendored_dependencies_or_staged_weights(s3, packages, vendor, tmp_path):
    bundle = _bundle(packages)
    with pytest.raises(SystemExit, match=r"run `make packages` first"):
        stage_bundle(s3, BUCKET, bundle, packages_dir=packages, vendor_dir=tmp_path / "empty")
    (vendor / ROLE / VENDOR_MARKER).unlink()  # a half-finished `make packages`
    with pytest.raises(SystemExit, match=r"run `make packages` first"):
        stage_bundle(s3, BUCKET, bundle, packages_dir=packages, vendor_dir=vendor)
    (vendor / ROLE / VENDOR_MARKER).write_text("3.12\n")
    unstaged = Bundle(ROLE, bundle.prefix, "weights/nothing-here/")
    with pytest.raises(SystemExit, match=r"no staged weights under s3://.*/weights/nothing-here/"):
        stage_bundle(s3, BUCKET, unstaged, packages_dir=packages, vendor_dir=vendor)
    assert not _keys(s3, bundle.prefix)
    # A dry run touches nothing and says what is missing instead of stopping.
    assert stage_bundle(s3, BUCKET, bundle, packages_dir=packages, vendor_dir=tmp_path / "empty", dry_run=True)
    assert not _keys(s3, bundle.prefix)


def test_stage_weights_stages_the_bundle_after_the_role_weights(s3, packages, vendor, configs, monkeypatch):
    """make stage-weights ENV=prod ROLE=grounded_sam: the missing weights folder is downloaded and uploaded, the
    one already there is skipped (--missing-only), then the bundle copies both."""
    from model_packages import stage_weights

    monkeypatch.setattr(ops_bundles, "VENDOR_DIR", vendor)
    monkeypatch.setattr(ops_bundles, "PACKAGES_DIR", packages)
    s3.delete_object(Bucket=BUCKET, Key=f"weights/{ROLE}/sam/config.json")
    s3.delete_object(Bucket=BUCKET, Key=f"weights/{ROLE}/sam/model.safetensors")
    downloads: list[str] = []

    def download(hub_id: str, target: Path) -> Path:
        downloads.append(hub_id)
        target.mkdir(parents=True, exist_ok=True)
        (target / "config.json").write_text('{"model_type": "sam"}')
        return target

    config = configs["prod"]
    done = stage_weights.stage(config, s3=s3, bucket=BUCKET, roles=[ROLE], download=download, missing_only=True)
    assert downloads == [stage_weights.COMPONENTS[ROLE]["sam"]]  # only the missing component
    assert [u.key_prefix for u, _ in done] == [f"weights/{ROLE}/sam/"]
    (bundle,) = bundle_plan(config, [ROLE], packages)
    names = set(_keys(s3, bundle.prefix + f"{c.BUNDLE_WEIGHTS_DIR}/"))
    assert names == {
        f"{bundle.prefix}{c.BUNDLE_WEIGHTS_DIR}/{n}"
        for n in ("grounding_dino/config.json", "grounding_dino/model.safetensors", "sam/config.json")
    }
    assert _keys(s3, bundle.manifest_key)


# ---- preflight and deploy ----


def test_preflight_blocks_on_a_missing_bundle_with_the_staging_command(stubs, configs):
    config = configs["prod"]
    bucket = config.bucket_name("artifacts", ACCOUNT)
    plan = {ROLE: f"bundles/{ROLE}/abc/{MANIFEST}", c.MODEL_CLIP_TAGGING: f"bundles/clip_tagging/def/{MANIFEST}"}
    stubs.weights(bucket, {plan[ROLE]: 0, plan[c.MODEL_CLIP_TAGGING]: 1})
    rows = {row.name: row for row in check_bundles(config, stubs.clients, ACCOUNT, plan=lambda _c: plan)}
    missing, present = rows[f"bundle {ROLE}"], rows[f"bundle {c.MODEL_CLIP_TAGGING}"]
    assert missing.status == "fail" and missing.blocker and f"bundles/{ROLE}/abc/" in missing.detail
    assert missing.fix == f"make packages && make stage-weights ENV=prod ROLE={ROLE}"
    assert present.status == "ok" and "bundles/clip_tagging/def/" in present.detail
    assert check_bundles(configs["dev"], stubs.clients, ACCOUNT) == []  # dev: nothing isolated, no S3 call


def test_deploy_stages_a_missing_bundle_when_asked_and_stops_otherwise(stubs, configs):
    config = configs["prod"]
    bucket = config.bucket_name("artifacts", ACCOUNT)
    weights = {"vlm": ["weights/vlm/"], ROLE: [f"weights/{ROLE}/sam/"]}
    bundles = {ROLE: f"bundles/{ROLE}/abc/{MANIFEST}"}
    commands: list[list[str]] = []

    def run(argv) -> int:
        commands.append(list(argv))
        return 0

    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    stubs.ready(config)
    stubs.weights(bucket, {"weights/vlm/": 2, f"weights/{ROLE}/sam/": 2, bundles[ROLE]: 0})  # weights there
    with pytest.raises(OpsError, match=rf"no bundle for {ROLE} in .*make stage-weights ENV=prod ROLE={ROLE}`"):
        deploy(config, stubs.clients, run, console, plan=lambda _c: weights, bundles=lambda _c: bundles)
    assert commands == [["cdk", "deploy", "prod/Storage", "--require-approval", "broadening"]]

    commands.clear()
    stubs.ready(config)
    stubs.weights(bucket, {"weights/vlm/": 2, f"weights/{ROLE}/sam/": 2, bundles[ROLE]: 0})
    stubs.weights(bucket, {"weights/vlm/": 2, f"weights/{ROLE}/sam/": 2, bundles[ROLE]: 1})  # after staging
    deploy(config, stubs.clients, run, console, stage_weights=True, plan=lambda _c: weights, bundles=lambda _c: bundles)
    assert commands[1] == [
        "make",
        "--no-print-directory",
        "stage-weights",
        "ENV=prod",
        f"ROLE={ROLE}",
        "STAGE_ARGS=--missing-only",
    ]
    assert commands[2] == ["cdk", "deploy", "prod/*", "--require-approval", "broadening"]
    assert f"no bundle for {ROLE}" in out.getvalue()
