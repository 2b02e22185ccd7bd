"""CLIP Interrogator: an image in, a Stable Diffusion prompt out (a BLIP caption plus the term-table entries that
CLIP ranks closest to the image). Modes fast / classic / best / negative, as clip-interrogator 0.6.0 (MIT) defines
them; the ranking is reimplemented over transformers CLIP in clip_interrogator_rank.py.

DJL LMI container, Python engine. Contract: docs/model-contracts.md, "clip_interrogator". Layout of the staged
weights (the directory DJL resolves `option.model_id` to, or this package's folder):

    clip/                          CLIPModel + CLIPProcessor   (option.clip_model_id, default "clip")
    caption/                       BLIP(-2) captioner + processor (option.caption_model_id, default "caption")
    term_embeddings.safetensors    the term tables' text embeddings (option.term_embeddings)

clip_model_id / caption_model_id may also be absolute directories or org/name hub ids; a bare name with no such
sub-folder (nothing staged, model_id a hub id) falls back to model_id as the CLIP model and to
Salesforce/blip-image-captioning-large as the captioner. The term embeddings are loaded at
start-up and checked against the shipped tables and the loaded CLIP weights; when missing or stale they are
computed once (a warning: minutes on a GPU) and cached under `option.term_cache_dir` (default
/tmp/clip_interrogator) for the worker's next start. Nothing is downloaded from a hub unless a hub id is configured.
"""

from __future__ import annotations

import vlp_vendor  # noqa: F401  (first: vendored dependencies go on sys.path before any third-party import)

# isort: split
import hashlib
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from clip_interrogator_rank import Interrogator, Prompt, TermTable
from clip_interrogator_terms import (
    DEFAULT_CLIP_MODEL,
    EMBEDDINGS_FILE,
    TermEmbeddingsMismatch,
    compute_term_embeddings,
    load_term_embeddings,
    load_term_tables,
    precompute_term_embeddings,
    save_term_embeddings,
)
from djl_python import Input, Output
from transformers import AutoConfig, AutoProcessor, BlipForConditionalGeneration
from vlp_clip import ClipService
from vlp_djl_support import (
    ImageSettings,
    ModelLocation,
    Properties,
    RequestError,
    choice_field,
    handle_with,
    int_field,
    load_pretrained,
    locate_model,
    model_id_fallback,
    option,
)

logger = logging.getLogger(__name__)

MODES = ("fast", "classic", "best", "negative")
MAX_FLAVORS = 64
DEFAULT_MIN_FLAVORS = 8
DEFAULT_MAX_FLAVORS = 32
DEFAULT_CAPTION_MODEL = "Salesforce/blip-image-captioning-large"


@dataclass(frozen=True)
class InterrogateRequest:
    image: object  # PIL.Image, RGB
    mode: str
    min_flavors: int
    max_flavors: int


@dataclass(frozen=True, kw_only=True)
class InterrogatorSettings(ImageSettings):
    """Worker settings from serving.properties (the `option.` prefix removed by DJL)."""

    clip: ModelLocation
    caption: ModelLocation  # the BLIP(-2) captioner
    roots: tuple[str | None, ...]  # where relative locations are looked up: model_id's directory, model_dir
    caption_max_length: int = option(32, low=1, high=512)
    chunk_size: int = option(1024, low=1)
    flavor_intermediate_count: int = option(1024, low=1)
    term_embeddings: str = option(EMBEDDINGS_FILE)
    terms_dir: str = option("")  # "": the shipped tables (data/)
    term_cache_dir: str = option(str(Path(tempfile.gettempdir()) / "clip_interrogator"))

    @classmethod
    def from_properties(cls, props: Properties) -> InterrogatorSettings:
        model_dir = props.get_str("model_dir")
        model_id = props.get_str("model_id")
        roots = (model_id if model_id and Path(model_id).is_dir() else model_dir, model_dir)
        clip_fallback = model_id_fallback(model_id, DEFAULT_CLIP_MODEL, model_type="clip")
        clip = locate_model(props, "clip_model_id", "model_name", roots, clip_fallback)
        caption = locate_model(props, "caption_model_id", "caption_model_name", roots, DEFAULT_CAPTION_MODEL)
        return props.read(cls, clip=clip, caption=caption, roots=roots)


class ClipInterrogatorService(ClipService):
    max_aspect = 4.0
    settings_cls = InterrogatorSettings
    settings: InterrogatorSettings
    # set by load(), before any request
    caption_model: Any  # BLIP or BLIP-2 (_captioner_class)
    caption_processor: Any  # its AutoProcessor
    interrogator: Interrogator
    term_embeddings_source = ""  # "model_dir", "cache" or "computed": how start-up got them

    def load(self) -> None:
        settings = self.settings
        self.load_clip(settings.clip, settings.chunk_size)
        captioner = _captioner_class(settings.caption.source)
        self.caption_model = load_pretrained(captioner, settings.caption.source, self.device, self.dtype)
        self.caption_processor = AutoProcessor.from_pretrained(settings.caption.source)
        tables = load_term_tables(settings.terms_dir or None)
        embeddings = self._term_embeddings(tables)
        term_tables = {
            name: TermTable(name, list(terms), embeddings[name].to(device=self.device, dtype=self.dtype))
            for name, terms in tables.items()
        }
        self.interrogator = Interrogator(
            term_tables,
            self.encoder.encode,
            self.encoder.fits,
            chunk_size=settings.chunk_size,
            flavor_intermediate_count=settings.flavor_intermediate_count,
        )
        count = sum(len(t) for t in tables.values())
        logger.info("%d terms, embeddings from %s", count, self.term_embeddings_source)

    def _term_embeddings(self, tables: dict) -> dict:
        settings, roots = self.settings, self.settings.roots
        staged = Path(settings.term_embeddings)
        if not staged.is_absolute():
            staged = next(
                (Path(r) / staged for r in roots if r and (Path(r) / staged).is_file()), Path(roots[0] or ".") / staged
            )
        key = hashlib.sha256(settings.clip.source.encode()).hexdigest()[:16]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", settings.clip.name)[-60:]
        cached = Path(settings.term_cache_dir) / f"{name}-{key}.safetensors"
        for source, path in (("model_dir", staged), ("cache", cached)):
            try:
                embeddings = load_term_embeddings(path, tables, self.encoder)
                self.term_embeddings_source = source
                logger.info("term embeddings from %s", path)
                return embeddings
            except TermEmbeddingsMismatch as reason:
                if source == "model_dir":
                    logger.warning("term embeddings not usable: %s", reason)
        logger.warning(
            "computing the text embeddings of %d terms at start-up (stage them with precompute_term_embeddings to "
            "skip this); caching them in %s",
            sum(len(t) for t in tables.values()),
            cached,
        )
        embeddings = compute_term_embeddings(self.encoder, tables)
        self.term_embeddings_source = "computed"
        try:
            save_term_embeddings(cached, embeddings, tables, self.settings.clip.name)
        except OSError as error:
            logger.warning("could not cache the term embeddings in %s: %s", cached, error)
        return embeddings

    # ---- requests ----

    def parse_body(self, body: dict) -> InterrogateRequest:
        mode = choice_field(body, "mode", "fast", MODES, "UNKNOWN_MODE")
        max_flavors = int_field(body, "max_flavors", DEFAULT_MAX_FLAVORS, 1, MAX_FLAVORS)
        min_flavors = int_field(body, "min_flavors", min(DEFAULT_MIN_FLAVORS, max_flavors), 0, MAX_FLAVORS)
        if min_flavors > max_flavors:
            raise RequestError(
                "VALUE_OUT_OF_RANGE", f"'min_flavors' ({min_flavors}) must not exceed 'max_flavors' ({max_flavors})"
            )
        return InterrogateRequest(self.image(body), mode, min_flavors, max_flavors)

    @torch.inference_mode()
    def run(self, requests: list[InterrogateRequest]) -> list[dict]:
        image_features = self.encoder.encode_images([r.image for r in requests])
        needs_caption = [i for i, r in enumerate(requests) if r.mode != "negative"]
        captions: dict[int, str] = {}
        if needs_caption:
            texts = self.caption([requests[i].image for i in needs_caption])
            captions = dict(zip(needs_caption, texts, strict=True))
        results = []
        for i, (request, features) in enumerate(zip(requests, image_features, strict=True)):
            caption = captions.get(i)
            prompt = self._interrogate(request, features, caption)
            results.append(
                {
                    "prompt": prompt.text,
                    "caption": caption,
                    "mode": request.mode,
                    "flavors": prompt.terms,
                    "model": self.settings.clip.name,
                    "caption_model": self.settings.caption.name,
                }
            )
        return results

    def _interrogate(self, request: InterrogateRequest, features: torch.Tensor, caption: str | None) -> Prompt:
        ci = self.interrogator
        if request.mode == "negative":
            return ci.negative(features, request.min_flavors, request.max_flavors)
        assert caption is not None  # run() captions every image whose mode is not negative
        if request.mode == "fast":
            return ci.fast(features, caption, request.max_flavors)
        if request.mode == "classic":
            return ci.classic(features, caption, request.max_flavors)
        return ci.best(features, caption, request.min_flavors, request.max_flavors)

    def caption(self, images: list) -> list[str]:
        pixels = self.caption_processor(images=images, return_tensors="pt")["pixel_values"]
        tokens = self.caption_model.generate(
            pixel_values=pixels.to(self.device, self.dtype), max_new_tokens=self.settings.caption_max_length
        )
        return [text.strip() for text in self.caption_processor.batch_decode(tokens, skip_special_tokens=True)]


def _captioner_class(source: str) -> type:
    """BLIP (the default, Salesforce/blip-image-captioning-large) or BLIP-2, chosen from the model's config."""
    model_type = AutoConfig.from_pretrained(source).model_type
    if model_type == "blip":
        return BlipForConditionalGeneration
    if model_type == "blip-2":
        from transformers import Blip2ForConditionalGeneration

        return Blip2ForConditionalGeneration
    raise ValueError(f"{source}: caption model type {model_type!r} is not supported (blip, blip-2)")


_service = ClipInterrogatorService(Path(__file__).resolve().parent)


def handle(inputs: Input) -> Output | None:
    """DJL entry point: the first (empty) call loads the model(s); later calls are requests or dynamic batches."""
    return handle_with(_service, inputs, Output, name="clip_interrogator", what="the models are")


__all__ = ["ClipInterrogatorService", "handle", "precompute_term_embeddings"]
