"""Helpers for the grounded_sam tests: tiny random-weight Grounding DINO and SAM built offline from configs and
saved the way `make stage-weights` lays them out (<root>/grounding_dino, <root>/sam), so the package loads them
exactly as in production; the properties DJL would pass; test images."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import djl_settings
import numpy as np
from package_loader import load_package_module  # noqa: F401 (the tests call it through this module)
from tiny_bert import BASE_VOCAB, bert_tokenizer

MODEL_NAME = "tiny-random-grounding-dino"
SAM_NAME = "tiny-random-sam"


def properties(weights: Path, **extra: object) -> dict:
    """What DJL hands the initialisation request, with the tiny weights staged in `weights`."""
    return djl_settings.package_properties(
        "grounded_sam", weights, **{"model_name": MODEL_NAME, "sam_model_name": SAM_NAME, **extra}
    )


def image_bytes(width: int = 160, height: int = 120, fmt: str = "PNG", mode: str = "RGB", seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def image_b64(*args, **kwargs) -> str:
    return base64.b64encode(image_bytes(*args, **kwargs)).decode("ascii")


# A BERT-style wordpiece vocabulary covering the test prompts; anything else tokenizes to [UNK].
VOCAB = [
    *BASE_VOCAB,
    "a",
    "the",
    "dog",
    "cat",
    "red",
    "ball",
    "car",
    "person",
    "tree",
    "blue",
    "sky",
    "next",
    "to",
    "of",
    "##s",
]


ARCHITECTURES = Path(__file__).resolve().parent / "architectures.json"


def save_grounded_sam(root: Path, vocab: list[str], architecture: str = "tiny"):
    """Random-weight Grounding DINO (a Swin backbone, a BERT text encoder over `vocab`) and SAM of one of the
    architectures in architectures.json ("tiny" for the tests, "bench" for bench/grounded_sam.py), saved with their
    processors where `make stage-weights` puts them (<root>/grounding_dino, <root>/sam). Returns (detector, sam)."""
    from transformers import (
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SamConfig,
        SamImageProcessor,
        SamModel,
        SamProcessor,
        SwinConfig,
    )

    sizes = json.loads(ARCHITECTURES.read_text(encoding="utf-8"))[architecture]
    tokenizer = bert_tokenizer(root, vocab)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(out_indices=[2, 3, 4], **sizes["swin"]),
        text_config=BertConfig(vocab_size=len(vocab), **sizes["bert"]),
        **sizes["dino"],
    )
    detector_dir = root / "grounding_dino"
    detector = GroundingDinoForObjectDetection(config).eval()
    detector.save_pretrained(detector_dir)
    GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size=sizes["dino_image_size"]), tokenizer=tokenizer
    ).save_pretrained(detector_dir)
    sam_config = SamConfig(
        vision_config=sizes["sam_vision"],
        prompt_encoder_config=sizes["sam_prompt"],
        mask_decoder_config=sizes["sam_decoder"],
    )
    sam_dir = root / "sam"
    sam = SamModel(sam_config).eval()
    sam.save_pretrained(sam_dir)
    side = sizes["sam_side"]
    SamProcessor(
        SamImageProcessor(size={"longest_edge": side}, pad_size={"height": side, "width": side})
    ).save_pretrained(sam_dir)
    return detector, sam


def build(root: Path) -> Path:
    save_grounded_sam(root, VOCAB)
    return root
