"""CLIP embeddings for the packages that score texts against images (clip_tagging, clip_interrogator): one
transformers CLIPModel and its processor, loaded by `ClipService.load_clip`, and `ClipEncoder`'s L2-normalised image
and text embeddings. The package build copies model_packages/shared/ into every model.tar.gz beside model.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import CLIPModel, CLIPProcessor
from vlp_djl_support import ImageService, ModelLocation, load_pretrained


def features(output: Any) -> torch.Tensor:
    """get_*_features returns a tensor in transformers 4.x and a pooled output object in 5.x."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipEncoder:
    """L2-normalised CLIP embeddings: images in one pass (float32), texts in chunks of texts of similar length (less
    padding), in the model's dtype and on its device."""

    def __init__(self, model: Any, tokenizer: Any, image_processor: Any = None, *, batch_size: int = 256) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.batch_size = batch_size
        parameter = next(model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.context_length = int(model.config.text_config.max_position_embeddings)
        self.dim = int(model.config.projection_dim)
        self.texts_encoded = 0

    @torch.inference_mode()
    def encode_images(self, images: list) -> torch.Tensor:
        """(len(images), dim), float32."""
        pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        output = self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype))
        return torch.nn.functional.normalize(features(output).float(), dim=-1)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(len(texts), dim), in the model's dtype."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty((len(texts), self.dim), device=self.device, dtype=self.dtype)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            tokens = self.tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=self.context_length,
                return_tensors="pt",
            )
            output = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device)
            )
            rows = torch.nn.functional.normalize(features(output).float(), dim=-1)
            out[torch.tensor(chunk, device=self.device)] = rows.to(self.dtype)
        self.texts_encoded += len(texts)
        return out

    def fits(self, text: str) -> bool:
        """Whether `text` fits CLIP's context with room to spare, as clip-interrogator's _prompt_at_max_len tests:
        at most context_length - 1 tokens, start and end tokens included."""
        ids = self.tokenizer(text, truncation=True, max_length=self.context_length + 1)["input_ids"]
        return len(ids) < self.context_length


class ClipService(ImageService):
    """An ImageService around one CLIP model: `load_clip` loads it with its processor and encoder."""

    model: CLIPModel  # set by load_clip(), before any request
    processor: CLIPProcessor
    encoder: ClipEncoder

    def load_clip(self, location: ModelLocation, batch_size: int) -> None:
        self.model = load_pretrained(CLIPModel, location.source, self.device, self.dtype)
        self.processor = CLIPProcessor.from_pretrained(location.source)
        self.encoder = ClipEncoder(self.model, self.processor.tokenizer, self.processor, batch_size=batch_size)
