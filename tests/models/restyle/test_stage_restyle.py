"""`make stage-weights` for restyle: the SDXL pipeline folder at the role's prefix, only the files the package loads
(the fp16 variant), and a folder staged that way is one the package serves from."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import djl_double
import restyle_helpers as helpers

from model_packages import stage_weights
from stacks import constants as c
from stacks.config import CONFIG_DIR, load_config

BUCKET = "vlp-dev-artifacts-123456789012-us-east-1"
# stabilityai/stable-diffusion-xl-base-1.0's repository (the files that decide the filter; README, images and
# licence text left out)
SDXL_REPOSITORY = [
    "model_index.json",
    "sd_xl_base_1.0.safetensors",
    "sd_xl_base_1.0_0.9vae.safetensors",
    "sd_xl_offset_example-lora_1.0.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "text_encoder/model.fp16.safetensors",
    "text_encoder/model.onnx",
    "text_encoder/openvino_model.bin",
    "text_encoder_2/config.json",
    "text_encoder_2/model.safetensors",
    "text_encoder_2/model.fp16.safetensors",
    "text_encoder_2/model.onnx_data",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "tokenizer_2/merges.txt",
    "tokenizer_2/special_tokens_map.json",
    "tokenizer_2/tokenizer_config.json",
    "tokenizer_2/vocab.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/model.onnx_data",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae_1_0/config.json",
    "vae_1_0/diffusion_pytorch_model.fp16.safetensors",
    "vae_decoder/model.onnx",
]


def selected(patterns: list[str] | tuple[str, ...]) -> set[str]:
    """What snapshot_download keeps: a file matching any pattern (fnmatch, as huggingface_hub filters)."""
    return {name for name in SDXL_REPOSITORY if any(fnmatch.fnmatch(name, p) for p in patterns)}


def test_restyle_stages_only_the_fp16_pipeline():
    config = load_config(CONFIG_DIR / "dev.yaml")
    (upload,) = [u for u in stage_weights.plan(config) if u.role == c.MODEL_RESTYLE]
    assert upload.hub_id == "stabilityai/stable-diffusion-xl-base-1.0"
    assert upload.key_prefix == "weights/restyle/"
    assert upload.allow_patterns is not None
    assert selected(upload.allow_patterns) == {
        "model_index.json",
        "scheduler/scheduler_config.json",
        *(
            f"tokenizer{n}/{f}"
            for n in ("", "_2")
            for f in ("merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json")
        ),
        "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors",
        "text_encoder_2/config.json",
        "text_encoder_2/model.fp16.safetensors",
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    }
    # the other roles keep the general filter
    assert all(u.allow_patterns is None for u in stage_weights.plan(config) if u.role != c.MODEL_RESTYLE)


def test_hub_download_passes_the_roles_patterns(monkeypatch, tmp_path: Path):
    import huggingface_hub

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda hub_id, **kw: calls.append(kw) or str(tmp_path))
    stage_weights.hub_download("stabilityai/stable-diffusion-xl-base-1.0", tmp_path, ["model_index.json"])
    stage_weights.hub_download("openai/clip-vit-large-patch14", tmp_path)
    assert calls[0]["allow_patterns"] == ["model_index.json"]
    assert calls[1]["allow_patterns"] == stage_weights.ALLOW_PATTERNS


def test_a_staged_prefix_is_what_the_package_serves_from(tmp_path: Path, s3, image_ref):
    """Stage the tiny pipeline through stage(), download the prefix as DJL would, serve a request from it."""
    config = load_config(CONFIG_DIR / "dev.yaml")
    artifacts = s3  # the session's moto S3 (a nested mock would reset the requests bucket when it ends)
    artifacts.create_bucket(Bucket=BUCKET)
    patterns_seen = []

    def fake_download(hub_id: str, target: Path, allow_patterns: tuple[str, ...]) -> Path:
        patterns_seen.append(allow_patterns)
        full = helpers.save_tiny_sdxl(tmp_path / "hub")  # the repository, here with fp16-named files only
        for path in full.rglob("*"):
            name = path.relative_to(full).as_posix()
            if path.is_file() and any(fnmatch.fnmatch(name, p) for p in allow_patterns):
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(path.read_bytes())
        return target

    stage_weights.stage(config, s3=artifacts, bucket=BUCKET, roles=[c.MODEL_RESTYLE], download=fake_download)
    assert patterns_seen
    downloaded = tmp_path / "djl-download"
    for item in artifacts.list_objects_v2(Bucket=BUCKET, Prefix="weights/restyle/")["Contents"]:
        local = downloaded / item["Key"].removeprefix("weights/restyle/")
        local.parent.mkdir(parents=True, exist_ok=True)
        artifacts.download_file(BUCKET, item["Key"], str(local))
    assert (downloaded / "model_index.json").is_file()
    module = helpers.load_package_module()
    module._service.s3 = s3
    assert djl_double.initialise(module.handle, helpers.properties(downloaded)) is None
    response = djl_double.invoke(module.handle, helpers.body(image_ref, "staged"))
    assert response.code == 200, response.body
