"""Grounded-SAM: text-prompted detection (Grounding DINO) and box-prompted segmentation (SAM).

Request parsing and validation, model loading (once per worker), inference and mask encoding; `GroundedSam` is the
worker's service, which model.py's `handle` drives through the shared batch driver (vlp_djl_support.handle_with:
status codes, batching, faults). Wire format: docs/model-contracts.md, "grounded_sam".
Module names are unique across model packages (tests load several packages into one interpreter).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils
from transformers import AutoProcessor, GroundingDinoForObjectDetection, SamModel, SamProcessor
from vlp_djl_support import (
    ModelLocation,
    ModelService,
    Properties,
    RequestError,
    list_field,
    load_pretrained,
    locate_model,
    model_id_fallback,
    option,
)

DEFAULT_DETECTOR_ID = "IDEA-Research/grounding-dino-base"
DEFAULT_SAM_ID = "facebook/sam-vit-huge"
MASK_FORMATS = ("none", "rle", "png", "both")
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_PROMPTS = 32
MAX_PROMPT_CHARS = 200
MAX_DETECTIONS = 100


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """Worker settings from serving.properties (the `option.` prefix removed by DJL)."""

    detector: ModelLocation  # Grounding DINO
    sam: ModelLocation
    max_image_side: int = option(2048, low=1)
    max_image_bytes: int = option(8 * 1024 * 1024, low=1)
    nms_iou_threshold: float = option(0.8, low=0.0, high=1.0)
    mask_batch_size: int = option(16, low=1)  # boxes per SAM decoder pass
    max_response_bytes: int = option(5_500_000, low=1)

    @classmethod
    def from_properties(cls, props: Properties) -> Settings:
        root = props.get_str("model_id")
        fallback = model_id_fallback(root, DEFAULT_DETECTOR_ID)
        detector = locate_model(props, "detector_model_id", "model_name", [root], fallback)
        return props.read(cls, detector=detector, sam=locate_model(props, "sam_model_id", "sam_model_name", [root]))


# --------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class DetectRequest:
    image: Image.Image
    prompts: list[str]  # as sent, deduplicated
    phrases: list[str]  # the same, normalised for Grounding DINO (lowercase, no periods)
    box_threshold: float
    text_threshold: float
    masks: str
    max_detections: int


def _number(body: dict, key: str, default: float, low: float, high: float, *, integer: bool = False) -> float:
    value = body.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        kind = "an integer" if integer else "a number"
        raise RequestError("INVALID_REQUEST", f"'{key}' must be {kind}, got {json.dumps(value)[:50]}")
    if not np.isfinite(value) or value < low or value > high:
        raise RequestError("VALUE_OUT_OF_RANGE", f"'{key}' must be between {low:g} and {high:g}, got {value}")
    return int(value) if integer else float(value)


def decode_image(value: Any, settings: Settings) -> Image.Image:
    if not isinstance(value, str) or not value:
        raise RequestError(
            "INVALID_REQUEST",
            "'image' is required: a base64 string of JPEG, PNG or WebP bytes",
        )
    if value.startswith("data:"):  # tolerate a data URI
        value = value.partition(",")[2]
    if len(value) > settings.max_image_bytes * 4 // 3 + 4:
        raise RequestError("IMAGE_TOO_LARGE", f"the image is over {settings.max_image_bytes} bytes")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("INVALID_IMAGE", "'image' is not valid base64") from None
    try:
        image = Image.open(io.BytesIO(raw))
        image_format = image.format
        width, height = image.size  # from the header: checked before decoding the pixels
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise RequestError("INVALID_IMAGE", "'image' is not a JPEG, PNG or WebP image") from None
    if image_format not in IMAGE_FORMATS:
        raise RequestError("INVALID_IMAGE", f"image format {image_format} is not supported (JPEG, PNG, WebP)")
    if max(width, height) > settings.max_image_side:
        raise RequestError(
            "IMAGE_TOO_LARGE",
            f"the image is {width}x{height}; its long side must be at most {settings.max_image_side} px",
        )
    try:
        image.load()
        return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        raise RequestError("INVALID_IMAGE", "the image data is truncated or corrupt") from None


def _normalise_phrase(prompt: str) -> str:
    # Grounding DINO separates phrases with ". " and its tokenizer is uncased.
    return " ".join(prompt.replace(".", " ").split()).lower()


def parse_request(body: Any, settings: Settings) -> DetectRequest:
    if not isinstance(body, dict):
        raise RequestError("INVALID_REQUEST", "the request body must be a JSON object")
    hint = f'1 to {MAX_PROMPTS} phrases such as ["dog"]'
    prompts = list_field(body, "prompts", hint, empty_code="EMPTY_PROMPTS", missing_code="EMPTY_PROMPTS")
    kept: list[str] = []
    phrases: list[str] = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise RequestError("INVALID_PROMPT", f"prompts[{i}] is not a string")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise RequestError("INVALID_PROMPT", f"prompts[{i}] is over {MAX_PROMPT_CHARS} characters")
        phrase = _normalise_phrase(prompt)
        if not phrase:
            raise RequestError("INVALID_PROMPT", f"prompts[{i}] is empty")
        if phrase not in phrases:  # duplicates are detected once, under the first spelling
            kept.append(prompt.strip())
            phrases.append(phrase)
    if len(phrases) > MAX_PROMPTS:
        raise RequestError("TOO_MANY_PROMPTS", f"{len(phrases)} prompts; at most {MAX_PROMPTS}")
    masks = body.get("masks", "rle")
    if masks is None:
        masks = "rle"
    if not isinstance(masks, str) or masks not in MASK_FORMATS:
        raise RequestError(
            "UNKNOWN_MASK_FORMAT",
            f"'masks' must be one of {', '.join(MASK_FORMATS)}, got {json.dumps(masks)[:50]}",
        )
    box_threshold = _number(body, "box_threshold", 0.35, 0.0, 1.0)
    text_threshold = _number(body, "text_threshold", 0.25, 0.0, 1.0)
    max_detections = int(_number(body, "max_detections", 20, 1, MAX_DETECTIONS, integer=True))
    image = decode_image(body.get("image"), settings)
    return DetectRequest(image, kept, phrases, box_threshold, text_threshold, masks, max_detections)


# --------------------------------------------------------------------------------------------- masks


def encode_mask(mask: np.ndarray, masks: str) -> dict:
    """A boolean HxW mask as the contract's mask object: COCO compressed RLE and/or a base64 PNG, and its area."""
    out: dict[str, Any] = {"area": int(mask.sum())}
    if masks in ("rle", "both"):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        out["rle"] = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("utf-8")}
    if masks in ("png", "both"):
        buffer = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(buffer, format="PNG", optimize=True)
        out["png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return out


def nms_per_label(boxes: torch.Tensor, scores: torch.Tensor, labels: list[int], iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression within each label; indices kept, highest score first."""
    order = torch.argsort(scores, descending=True).tolist()
    if iou_threshold >= 1.0:
        return order
    areas = ((boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)).tolist()
    b = boxes.tolist()
    kept: list[int] = []
    for i in order:
        suppressed = False
        for j in kept:
            if labels[j] != labels[i]:
                continue
            w = min(b[i][2], b[j][2]) - max(b[i][0], b[j][0])
            h = min(b[i][3], b[j][3]) - max(b[i][1], b[j][1])
            inter = max(w, 0.0) * max(h, 0.0)
            union = areas[i] + areas[j] - inter
            if union > 0 and inter / union > iou_threshold:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


def phrase_token_spans(token_ids: list[int], phrase_ids: list[list[int]]) -> list[list[int]]:
    """Positions of each phrase's tokens in the prompt's token ids (phrases appear in order, ". " between)."""
    spans: list[list[int]] = []
    cursor = 0
    for ids in phrase_ids:
        found = None
        for start in range(cursor, len(token_ids) - len(ids) + 1):
            if token_ids[start : start + len(ids)] == ids:
                found = start
                break
        if found is None or not ids:
            spans.append([])
            continue
        spans.append(list(range(found, found + len(ids))))
        cursor = found + len(ids)
    return spans


# --------------------------------------------------------------------------------------------- models


class GroundedSam(ModelService):
    """The worker's service: both models, loaded once per worker; `predict` serves one request."""

    settings_cls = Settings
    settings: Settings

    def load(self) -> None:
        settings = self.settings
        self.detector_processor = AutoProcessor.from_pretrained(settings.detector.source)
        self.detector = load_pretrained(
            GroundingDinoForObjectDetection, settings.detector.source, self.device, self.dtype
        )
        self.sam_processor = SamProcessor.from_pretrained(settings.sam.source)
        self.sam = load_pretrained(SamModel, settings.sam.source, self.device, self.dtype)
        self.tokenizer = self.detector_processor.tokenizer
        self.max_text_len = int(getattr(self.detector.config, "max_text_len", 256))
        post = inspect.signature(self.detector_processor.post_process_grounded_object_detection).parameters
        # transformers renamed box_threshold to threshold (4.51); the container may ship either.
        self._box_threshold_kwarg = "threshold" if "threshold" in post else "box_threshold"

    def parse_body(self, body: dict) -> DetectRequest:
        return parse_request(body, self.settings)

    def _to_device(self, batch: dict) -> dict:
        moved = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            moved[key] = value
        return moved

    @torch.inference_mode()
    def detect(self, request: DetectRequest) -> list[dict]:
        """Boxes, scores and labels (indices into request.prompts) after thresholds, NMS and the cap."""
        text = ". ".join(request.phrases) + "."
        token_ids = self.tokenizer(text)["input_ids"]
        if len(token_ids) > self.max_text_len:
            raise RequestError(
                "PROMPTS_TOO_LONG",
                f"the prompts are {len(token_ids)} tokens together; at most {self.max_text_len}",
                413,
            )
        inputs = self.detector_processor(images=request.image, text=text, return_tensors="pt")
        outputs = self.detector(**self._to_device(inputs))
        outputs.logits = outputs.logits.float()
        outputs.pred_boxes = outputs.pred_boxes.float()
        width, height = request.image.size
        result = self.detector_processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            text_threshold=request.text_threshold,
            target_sizes=[(height, width)],
            **{self._box_threshold_kwarg: request.box_threshold},
        )[0]
        boxes = result["boxes"].float().cpu()
        scores = result["scores"].float().cpu()
        # The processor's text labels are the decoded tokens above text_threshold (several phrases run together,
        # "[SEP]" included); we map each kept query to the prompt whose tokens it grounds best instead.
        probs = outputs.logits[0].sigmoid()
        keep = probs.max(dim=-1).values > request.box_threshold
        kept_probs = probs[keep].cpu()
        if kept_probs.shape[0] != boxes.shape[0]:
            raise RuntimeError("post-processing kept a different set of queries than expected")
        phrase_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in request.phrases]
        spans = phrase_token_spans(inputs["input_ids"][0].tolist(), phrase_ids)
        phrase_scores = (
            torch.stack(
                [
                    kept_probs[:, span].max(dim=-1).values if span else torch.zeros(kept_probs.shape[0])
                    for span in spans
                ],
                dim=-1,
            )
            if kept_probs.shape[0]
            else torch.zeros((0, len(spans)))
        )
        best_score, best_phrase = (
            phrase_scores.max(dim=-1) if phrase_scores.shape[0] else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
        )
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        valid = (best_score > request.text_threshold) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        index = torch.nonzero(valid).flatten()
        boxes, scores, labels = boxes[index], scores[index], best_phrase[index].tolist()
        kept = nms_per_label(boxes, scores, labels, self.settings.nms_iou_threshold)[: request.max_detections]
        return [
            {
                "label": request.prompts[labels[i]],
                "score": round(float(scores[i]), 4),
                "box": [round(float(v), 2) for v in boxes[i].tolist()],
            }
            for i in kept
        ]

    @torch.inference_mode()
    def segment(self, image: Image.Image, detections: list[dict], masks: str) -> None:
        """One SAM image embedding, every box prompted against it (in chunks); adds each detection's mask."""
        if not detections:
            return
        inputs = self.sam_processor(images=image, input_boxes=[[d["box"] for d in detections]], return_tensors="pt")
        embeddings = self.sam.get_image_embeddings(inputs["pixel_values"].to(self.device, self.dtype))
        all_boxes = inputs["input_boxes"].to(self.device, self.dtype)
        step = self.settings.mask_batch_size
        for start in range(0, len(detections), step):
            out = self.sam(
                image_embeddings=embeddings, input_boxes=all_boxes[:, start : start + step], multimask_output=False
            )
            chunk = self.sam_processor.image_processor.post_process_masks(
                out.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"]
            )[0]
            for offset, mask in enumerate(chunk):  # chunk: (boxes, 1, H, W) booleans
                detections[start + offset]["mask"] = encode_mask(mask[0].numpy().astype(bool), masks)

    def predict(self, request: DetectRequest) -> dict:
        detections = self.detect(request)
        if request.masks != "none":
            self.segment(request.image, detections, request.masks)
        width, height = request.image.size
        response = {
            "width": width,
            "height": height,
            "detections": detections,
            "model": self.settings.detector.name,
            "sam_model": self.settings.sam.name,
        }
        if request.masks in ("png", "both"):
            size = len(json.dumps(response))
            if size > self.settings.max_response_bytes:
                raise RequestError(
                    "RESPONSE_TOO_LARGE",
                    f"the PNG masks make a {size}-byte response (limit {self.settings.max_response_bytes}); "
                    "ask for masks 'rle' or fewer max_detections",
                    413,
                )
        return response
