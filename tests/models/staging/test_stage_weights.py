"""`make stage-weights`: the plan follows config and the packages' layouts; files land under each role's prefix."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from model_packages import stage_weights
from stacks import constants as c
from stacks.config import CONFIG_DIR, load_all, load_config
from stacks.serving_properties import package_options

BUCKET = "vlp-dev-artifacts-123456789012-us-east-1"


@pytest.fixture
def config():
    return load_config(CONFIG_DIR / "dev.yaml")


def test_plan_covers_every_component_in_its_subfolder(config):
    plan = {(u.role, u.key_prefix): u.hub_id for u in stage_weights.plan(config)}
    assert plan[(c.MODEL_VLM, "weights/vlm/")] == "HuggingFaceM4/idefics-9b-instruct"
    assert plan[(c.MODEL_ASR, "weights/asr/")] == "Systran/faster-whisper-large-v3"
    assert plan[(c.MODEL_GROUNDED_SAM, "weights/grounded_sam/grounding_dino/")] == "IDEA-Research/grounding-dino-base"
    assert plan[(c.MODEL_GROUNDED_SAM, "weights/grounded_sam/sam/")] == "facebook/sam-vit-huge"
    assert plan[(c.MODEL_INTENT_KEYWORDS, "weights/intent_keywords/nli/")] == config.models.intent_keywords.model_id
    assert plan[(c.MODEL_CLIP_INTERROGATOR, "weights/clip_interrogator/caption/")].startswith("Salesforce/blip")
    assert {u.role for u in stage_weights.plan(config)} == set(c.MODEL_ROLES)


def test_subfolders_match_the_packages_serving_properties():
    """The staged layout is what each DJL package resolves its components from."""
    root = Path(stage_weights.__file__).parent
    for role, components in stage_weights.COMPONENTS.items():
        if not (root / role / "serving.properties").exists():
            continue
        options = package_options(role, root)
        for subfolder in filter(None, components):
            assert subfolder in options.values(), (role, subfolder)


def test_hub_weights_and_role_filter(config, tmp_path):
    data = config.model_dump()
    data["models"]["llm"]["weights"] = {"hub_id": "meta-llama/Llama-2-7b-chat-hf"}
    hub_config = type(config).model_validate(data)
    roles = {u.role for u in stage_weights.plan(hub_config)}
    assert c.MODEL_LLM not in roles
    assert {u.role for u in stage_weights.plan(config, ["vlm", "asr"])} == {"vlm", "asr"}
    with pytest.raises(SystemExit, match="unknown roles: nope"):
        stage_weights.plan(config, ["vlm", "nope"])


@mock_aws
def test_stage_uploads_each_snapshot_and_the_interrogator_embeddings(config):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    downloaded, embedded = [], []

    def fake_download(hub_id: str, target: Path) -> Path:
        downloaded.append(hub_id)
        (target / "sub").mkdir(parents=True, exist_ok=True)
        (target / "config.json").write_text(f'{{"name": "{hub_id}"}}')
        (target / "sub" / "model.safetensors").write_bytes(b"weights")
        return target

    def fake_embed(model_dir: Path, name: str) -> Path:
        embedded.append((model_dir, name))
        assert (model_dir / "clip" / "config.json").exists(), "embeddings are computed from the staged CLIP"
        out = model_dir / "term_embeddings.safetensors"
        out.write_bytes(b"embeddings")
        return out

    done = stage_weights.stage(
        config,
        s3=s3,
        bucket=BUCKET,
        roles=["grounded_sam", "clip_interrogator"],
        download=fake_download,
        embed_terms=fake_embed,
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {
        "weights/grounded_sam/grounding_dino/config.json",
        "weights/grounded_sam/sam/sub/model.safetensors",
        "weights/clip_interrogator/clip/config.json",
        "weights/clip_interrogator/caption/sub/model.safetensors",
        "weights/clip_interrogator/term_embeddings.safetensors",
    } <= keys
    assert all(count == 2 for _, count in done)
    assert embedded and embedded[0][1] == config.models.clip_interrogator.model_id
    assert "facebook/sam-vit-huge" in downloaded


def test_dry_run_touches_nothing(config):
    calls = []
    done = stage_weights.stage(config, s3=None, bucket=BUCKET, download=lambda *a: calls.append(a), dry_run=True)
    assert calls == [] and len(done) == len(stage_weights.plan(config))


def test_staged_components_are_what_config_names_them():
    """Responses report a package's second model by the name config gives it (djl.options); staging must put that
    model in the subfolder the package loads it from."""
    named = [
        (c.MODEL_GROUNDED_SAM, "sam", "sam_model_name"),
        (c.MODEL_INTENT_KEYWORDS, "keywords", "keyword_model_name"),
        (c.MODEL_CLIP_INTERROGATOR, "caption", "caption_model_name"),
    ]
    for config in load_all():
        for role, subfolder, option in named:
            assert stage_weights.COMPONENTS[role][subfolder] == getattr(config.models, role).djl.options[option]
