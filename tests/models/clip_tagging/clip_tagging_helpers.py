"""Helpers for the clip_tagging tests: the package loader, the properties DJL would pass, a reference scorer that
uses transformers directly (no package code), and a counter of text-encoder calls."""

from __future__ import annotations

from pathlib import Path

import djl_settings
import package_loader

MODEL_NAME = "tiny-random-clip"


def load_package_module(package: str = "clip_tagging"):
    return package_loader.load_package_module(package)


def properties(model_dir: Path, **extra: object) -> dict:
    """What DJL hands the initialisation request, with the tiny CLIP saved in `model_dir`."""
    return djl_settings.package_properties("clip_tagging", model_dir, **extra)


class TextEncoderSpy:
    """Wraps a CLIPModel's get_text_features on one instance: counts calls and the texts (rows) encoded."""

    def __init__(self, model) -> None:
        self.calls = 0
        self.rows = 0
        self._original = model.get_text_features
        model.get_text_features = self

    def __call__(self, *args, **kwargs):
        self.calls += 1
        self.rows += int(kwargs["input_ids"].shape[0])
        return self._original(*args, **kwargs)

    def reset(self) -> None:
        self.calls = self.rows = 0


def reference_cosines(model_dir: Path, image_bytes: bytes, prompts: list[str]):
    """Cosine similarities of `prompts` to the image, computed with CLIPModel.forward (not the package's code)."""
    import io

    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    inputs = processor(text=prompts, images=image, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)
        scale = model.logit_scale.exp()
    return (out.logits_per_image[0] / scale).tolist(), float(scale)
