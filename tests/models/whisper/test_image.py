"""The image definition, checked without Docker: the pinned requirements are what these tests run against, cover
everything the server imports and leave torch out; the Dockerfile runs `serve` as a non-root user on port 8080."""

from __future__ import annotations

import ast
import json
import re
import sys
from importlib import metadata
from pathlib import Path

import whisper_testkit as kit

DOCKERFILE = (kit.PACKAGE_DIR / "Dockerfile").read_text()
SHARED_DIR = kit.PACKAGE_DIR.parent / "shared"  # the shared modules the image copies beside whisper_server
PINS = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", (kit.PACKAGE_DIR / "requirements.txt").read_text(), re.M))
DIRECT = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (kit.PACKAGE_DIR / "requirements.in").read_text(), re.M))
# import name -> distribution, for what the server imports
DISTRIBUTIONS = {
    "faster_whisper": "faster-whisper",
    "ctranslate2": "ctranslate2",
    "av": "av",
    "numpy": "numpy",
    "boto3": "boto3",  # vlp_hub_token.py: the hub token secret, read at start-up
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_file_is_hashed_and_matches_the_input():
    text = (kit.PACKAGE_DIR / "requirements.txt").read_text()
    for name in PINS:
        assert re.search(rf"^{re.escape(name)}==\S+ \\\n\s+--hash=sha256:", text, re.M), f"{name} has no hash"
    for name, version in DIRECT.items():
        assert PINS.get(name) == version, f"{name}: requirements.in says {version}, requirements.txt {PINS.get(name)}"


def test_the_image_runs_the_versions_the_tests_run():
    checked = 0
    for name, version in PINS.items():
        if name.startswith("nvidia-"):
            continue  # GPU-only libraries: not in the CPU test environment
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a dependency only the image needs (e.g. the hub client's extras)
        assert installed == version, f"{name}: image pins {version}, tests run {installed}"
        checked += 1
    for name in ("faster-whisper", "ctranslate2", "av", "numpy", "onnxruntime", "tokenizers"):
        assert name in PINS and PINS[name] == metadata.version(name)
    assert checked >= 6


def test_no_torch_in_the_image():
    assert not {_normal(n) for n in PINS} & {"torch", "transformers", "tensorflow", "jax"}


def _imports(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    return imported


def test_everything_the_server_imports_is_in_the_image():
    stdlib = set(sys.stdlib_module_names)
    imported: set[str] = set()
    for path in (kit.PACKAGE_DIR / "whisper_server").glob("*.py"):
        imported |= _imports(path)
    shared = {name for name in imported if (SHARED_DIR / f"{name}.py").is_file()}
    copied = re.search(r"^COPY --chown=root:root (shared/.*) /opt/program/$", DOCKERFILE, re.M)
    assert copied and set(copied.group(1).split()) == {f"shared/{name}.py" for name in shared}  # exactly those
    for name in shared:  # and what they import in turn
        imported |= _imports(SHARED_DIR / f"{name}.py")
    ignored = (kit.PACKAGE_DIR / "Dockerfile.dockerignore").read_text()
    assert all(f"!shared/{name}.py" in ignored for name in shared)  # in the build context
    third_party = imported - stdlib - {"__future__", "whisper_server"} - shared
    assert third_party <= set(DISTRIBUTIONS), f"map these to their distributions: {third_party - set(DISTRIBUTIONS)}"
    for module in third_party:
        assert _normal(DISTRIBUTIONS[module]) in {_normal(n) for n in PINS}


def test_dockerfile_serves_as_sagemaker_expects():
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\d+)\.(\d+)\.\d+-slim", DOCKERFILE, re.M)
    assert base, "pinned python slim base"
    assert (int(base.group(1)), int(base.group(2))) == sys.version_info[:2], "image Python = test Python"
    assert f"python{base.group(1)}.{base.group(2)}/site-packages/nvidia/cublas/lib" in DOCKERFILE
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE, re.M).group(1))
    assert entrypoint == ["python", "-m", "whisper_server"]
    assert json.loads(re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M).group(1)) == ["serve"]
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 8080$", DOCKERFILE, re.M)
    assert "--require-hashes" in DOCKERFILE and "COPY --chown=root:root whisper/whisper_server" in DOCKERFILE
    assert "MODEL_DIR=/opt/ml/model" in DOCKERFILE
