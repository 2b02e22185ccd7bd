"""Helpers for the grounded_sam tests: tiny random-weight Grounding DINO and SAM built offline from configs and
saved the way `make stage-weights` lays them out (<root>/grounding_dino, <root>/sam), so the package loads them
exactly as in production; the properties DJL would pass; test images."""

from __future__ import annotations

import base64
import io
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


def save_grounded_sam(
    root: Path,
    vocab: list[str],
    *,
    swin: dict,
    bert: dict,
    dino: dict,
    dino_image_size: dict,
    sam_vision: dict,
    sam_prompt: dict,
    sam_decoder: dict,
    sam_side: int,
):
    """Random-weight Grounding DINO (a Swin backbone, a BERT text encoder over `vocab`) and SAM of the given config
    values, saved with their processors where `make stage-weights` puts them (<root>/grounding_dino, <root>/sam).
    The tests (build) and bench/grounded_sam.py use it with their own sizes. Returns (detector, sam)."""
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

    tokenizer = bert_tokenizer(root, vocab)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(out_indices=[2, 3, 4], **swin),
        text_config=BertConfig(vocab_size=len(vocab), **bert),
        **dino,
    )
    detector_dir = root / "grounding_dino"
    detector = GroundingDinoForObjectDetection(config).eval()
    detector.save_pretrained(detector_dir)
    GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size=dino_image_size), tokenizer=tokenizer
    ).save_pretrained(detector_dir)
    sam_config = SamConfig(vision_config=sam_vision, prompt_encoder_config=sam_prompt, mask_decoder_config=sam_decoder)
    sam_dir = root / "sam"
    sam = SamModel(sam_config).eval()
    sam.save_pretrained(sam_dir)
    SamProcessor(
        SamImageProcessor(size={"longest_edge": sam_side}, pad_size={"height": sam_side, "width": sam_side})
    ).save_pretrained(sam_dir)
    return detector, sam


def build(root: Path, *, max_text_len: int = 32, num_queries: int = 30) -> Path:
    # d_model must be a multiple of 32 (GroupNorm); two decoder layers (the bbox heads are tied across layers).
    save_grounded_sam(
        root,
        VOCAB,
        swin={
            "image_size": 64,
            "patch_size": 4,
            "embed_dim": 8,
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 1, 1],
            "window_size": 4,
        },
        bert={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 64,
        },
        dino={
            "num_queries": num_queries,
            "encoder_layers": 1,
            "decoder_layers": 2,
            "d_model": 32,
            "encoder_ffn_dim": 32,
            "decoder_ffn_dim": 32,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_n_points": 1,
            "decoder_n_points": 1,
            "max_text_len": max_text_len,
        },
        dino_image_size={"shortest_edge": 96, "longest_edge": 128},
        sam_vision={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "output_channels": 16,
            "image_size": 64,
            "patch_size": 16,
            "mlp_dim": 32,
            "global_attn_indexes": [0],
            "window_size": 2,
            "num_pos_feats": 8,
        },
        sam_prompt={"hidden_size": 16, "image_size": 64, "patch_size": 16, "mask_input_channels": 4},
        sam_decoder={
            "hidden_size": 16,
            "mlp_dim": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 16,
        },
        sam_side=64,
    )
    return root
