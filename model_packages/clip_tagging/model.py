"""CLIP zero-shot tagging: an image and candidate labels in, the best labels with probabilities out.

DJL LMI container, Python engine. Contract: docs/model-contracts.md, "clip_tagging". The model (transformers
CLIPModel + CLIPProcessor, default openai/clip-vit-large-patch14) loads once per worker, on the empty
initialisation request, from `option.model_id` (a local directory: DJL downloads an S3 model_id first; or a hub id)
or from the package's own folder. Text embeddings of labels are kept in a bounded LRU cache keyed by the prompt
text (template filled with the label), so a taxonomy sent again and again is encoded once.

Scores:
- softmax: softmax over all the request's distinct labels of logit_scale x cosine (CLIP's own zero-shot rule);
- sigmoid: each label independently, sigmoid(logit_scale x (cosine - sigmoid_center)); `option.sigmoid_center`
  (default 0.2) is the cosine that scores 0.5: CLIP was not trained with a sigmoid loss, so this bias is a
  calibration choice, to tune on a taxonomy.
"""

from __future__ import annotations

import vlp_vendor  # noqa: F401  (first: vendored dependencies go on sys.path before any third-party import)

# isort: split
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from clip_tagging_cache import LabelEmbeddingCache
from djl_python import Input, Output
from vlp_clip import ClipService
from vlp_djl_support import (
    ImageSettings,
    ModelLocation,
    Properties,
    RequestError,
    choice_field,
    float_field,
    handle_with,
    int_field,
    list_field,
    locate_model,
    option,
)

logger = logging.getLogger(__name__)

MODES = ("softmax", "sigmoid")
DEFAULT_TEMPLATE = "a photo of {}"
DEFAULT_TOP_K = 5
MAX_LABEL_CHARS = 200
MAX_TEMPLATE_CHARS = 200


@dataclass(frozen=True)
class TaggingRequest:
    image: object  # PIL.Image, RGB
    labels: list[str]  # distinct, in the caller's order
    template: str
    mode: str
    top_k: int
    threshold: float

    def prompts(self) -> list[str]:
        return [self.template.replace("{}", label) for label in self.labels]


@dataclass(frozen=True, kw_only=True)
class TaggingSettings(ImageSettings):
    """Worker settings from serving.properties (the `option.` prefix removed by DJL)."""

    model: ModelLocation
    max_labels: int = option(10_000, low=1)
    label_cache_size: int = option(100_000)
    label_cache_max_mb: int = option(0)  # 0: no byte cap on the label cache
    text_batch_size: int = option(256, low=1)
    sigmoid_center: float = option(0.2, low=-1.0, high=1.0)

    @classmethod
    def from_properties(cls, props: Properties) -> TaggingSettings:
        model_dir = props.get_str("model_dir")  # weights in the package's own folder when model_id is unset
        return props.read(cls, model=locate_model(props, "model_id", "model_name", [model_dir], fallback=model_dir))


class ClipTaggingService(ClipService):
    settings_cls = TaggingSettings
    settings: TaggingSettings
    cache: LabelEmbeddingCache  # set by load(), before any request
    logit_scale = 100.0

    def load(self) -> None:
        settings = self.settings
        self.load_clip(settings.model, settings.text_batch_size)
        self.logit_scale = float(self.model.logit_scale.detach().float().exp().clamp(max=100.0))
        capacity, dim = settings.label_cache_size, self.encoder.dim
        row_bytes = dim * torch.empty((), dtype=self.dtype).element_size()
        if settings.label_cache_max_mb:
            capacity = min(capacity, settings.label_cache_max_mb * 2**20 // row_bytes)
        self.cache = LabelEmbeddingCache(capacity, dim, device=self.device, dtype=self.dtype)
        logger.info("label cache: %d embeddings (<= %.0f MB)", capacity, capacity * row_bytes / 2**20)

    # ---- requests ----

    def parse_body(self, body: dict) -> TaggingRequest:
        settings = self.settings
        labels = list_field(body, "labels", "candidate labels (strings)", empty_code="EMPTY_LABELS")
        if len(labels) > settings.max_labels:
            raise RequestError(
                "TOO_MANY_LABELS", f"{len(labels)} labels sent; at most {settings.max_labels} per request", 413
            )
        for index, label in enumerate(labels):
            if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
                raise RequestError(
                    "INVALID_LABEL",
                    f"labels[{index}] must be a non-empty string of at most {MAX_LABEL_CHARS} characters",
                )
        distinct = list(dict.fromkeys(labels))
        template = body.get("prompt_template")
        if template is None:
            template = DEFAULT_TEMPLATE
        if not isinstance(template, str) or template.count("{}") != 1 or len(template) > MAX_TEMPLATE_CHARS:
            raise RequestError(
                "INVALID_TEMPLATE",
                f"'prompt_template' must be a string of at most {MAX_TEMPLATE_CHARS} characters containing '{{}}' "
                "exactly once, e.g. 'a photo of {}'",
            )
        mode = choice_field(body, "mode", "softmax", MODES, "UNKNOWN_MODE")
        top_k = int_field(body, "top_k", min(DEFAULT_TOP_K, len(distinct)), 1, settings.max_labels)
        threshold = float_field(body, "threshold", 0.0, 0.0, 1.0)
        return TaggingRequest(
            image=self.image(body),
            labels=distinct,
            template=template,
            mode=mode,
            top_k=min(top_k, len(distinct)),
            threshold=threshold,
        )

    @torch.inference_mode()
    def run(self, requests: list[TaggingRequest]) -> list[dict]:
        image_features = self.encoder.encode_images([r.image for r in requests])
        prompts = list(dict.fromkeys(p for r in requests for p in r.prompts()))
        text_features = self.cache.get_many(prompts, self.encoder.encode)
        row_of = {prompt: row for row, prompt in enumerate(prompts)}
        results = []
        for request, image_feature in zip(requests, image_features, strict=True):
            rows = torch.tensor([row_of[p] for p in request.prompts()], device=self.device)
            cosine = text_features.index_select(0, rows).float() @ image_feature
            results.append(self._tags(request, cosine))
        return results

    def _tags(self, request: TaggingRequest, cosine: torch.Tensor) -> dict:
        if request.mode == "softmax":
            scores = torch.softmax(self.logit_scale * cosine, dim=0)
        else:
            scores = torch.sigmoid(self.logit_scale * (cosine - self.settings.sigmoid_center))
        top = torch.topk(scores, request.top_k)
        values, indices = top.values.cpu().tolist(), top.indices.cpu().tolist()
        scored = zip((round(score, 6) for score in values), indices, strict=True)
        tags = [
            {"label": request.labels[index], "score": score} for score, index in scored if score >= request.threshold
        ]
        return {"tags": tags, "mode": request.mode, "model": self.settings.model.name}


_service = ClipTaggingService(Path(__file__).resolve().parent)


def handle(inputs: Input) -> Output | None:
    """DJL entry point: the first (empty) call loads the model(s); later calls are requests or dynamic batches."""
    return handle_with(_service, inputs, Output, name="clip_tagging", what="the model is")


__all__ = ["ClipTaggingService", "LabelEmbeddingCache", "handle"]
