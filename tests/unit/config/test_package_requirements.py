"""The DJL containers install what tests/models ran: each package's requirements.txt pins, with hashes, the
versions requirements/models.txt pins (make lock compiles both). A pin that drifts fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stacks import constants as c

ROOT = Path(__file__).resolve().parents[3]
MODELS_TXT = ROOT / "requirements" / "models.txt"
CONTAINER_PROVIDED = {"torch"}  # the LMI container's CUDA build (requirements/djl-container.txt)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of a `uv pip compile --generate-hashes` file; fails on any unpinned requirement."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    name = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            assert name, f"{path}: a hash before any requirement"
            version, hashes = pins[name]
            pins[name] = (version, hashes | {line.removeprefix("--hash=").rstrip(" \\")})
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(\s*;[^\\]*)?\s*\\?", line)
        assert match, f"{path}: '{line}' is not an exact pin"
        name = canonical(match.group(1))
        pins[name] = (match.group(2), frozenset())
    return pins


def direct(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(canonical(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]))
    return names


TESTED = locked(MODELS_TXT)


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_every_pin_is_the_tested_version_with_its_hashes(role):
    pins = locked(ROOT / "model_packages" / role / "requirements.txt")
    assert pins, f"{role}: requirements.txt pins nothing"
    for name, (version, hashes) in pins.items():
        assert name in TESTED, f"{role}: {name} is not in requirements/models.txt, so no test ran it"
        tested_version, tested_hashes = TESTED[name]
        assert version == tested_version, f"{role}: {name}=={version} but the tests ran {tested_version}"
        assert hashes, f"{role}: {name} has no hash (pip's hash-checking mode needs one for every pin)"
        assert hashes <= tested_hashes, f"{role}: {name}'s hashes are not the tested artifacts'"


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_what_the_package_needs_is_pinned_and_the_containers_torch_is_not(role):
    package = ROOT / "model_packages" / role
    pins = locked(package / "requirements.txt")
    assert direct(package / "requirements.in") <= set(pins)
    assert not set(pins) & CONTAINER_PROVIDED
    assert not {name for name in pins if name.startswith("nvidia-")}  # torch's CUDA libraries stay the container's
    assert "transformers" in pins  # the tested transformers, whatever the LMI image ships (docs/decisions.md)
    header = (package / "requirements.txt").read_text().splitlines()[:3]
    assert any("-c requirements/models.txt" in line and "--generate-hashes" in line for line in header)


def test_lock_compiles_every_package():
    makefile = (ROOT / "Makefile").read_text()
    lock = makefile[makefile.index("\nlock:") :].split("\n\n")[0]
    assert "requirements/djl-container.txt" in lock and "-c requirements/models.txt" in lock
    assert "model_packages/$$p/requirements.in" in lock or all(
        f"model_packages/{role}/requirements.in" in lock for role in c.DJL_ROLES
    )
