"""Tiny random-weight CLIP and BLIP models and their tokenizers, built offline (no Hugging Face Hub).

Model packages load their weights with `from_pretrained(<local directory>)`, as in production; the builders here
write such directories: `save_tiny_clip(path)` (CLIPModel + CLIPProcessor) and `save_tiny_blip(path)`
(BlipForConditionalGeneration + BlipProcessor). They are deterministic (seeded) and small enough to build in well
under a second. `vit_b32_config()` gives the real openai/clip-vit-base-patch32 dimensions, for benchmarks.

Tokenizers are real transformers tokenizer classes over tiny vocabularies:
- CLIP: byte-level BPE (every byte, alone and word-final, plus whole-word merges for `words`), so any text encodes;
- BLIP: a WordPiece (BERT) vocabulary of special tokens, letters and `words`, with BLIP's `[DEC]` start token.
"""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Iterable
from pathlib import Path

DEFAULT_WORDS = (
    "a",
    "photo",
    "of",
    "the",
    "an",
    "in",
    "on",
    "with",
    "and",
    "by",
    "red",
    "blue",
    "green",
    "black",
    "white",
    "leather",
    "cotton",
    "dress",
    "shirt",
    "jeans",
    "boots",
    "shoes",
    "hat",
    "bag",
    "dog",
    "cat",
    "beach",
    "city",
    "night",
    "portrait",
    "painting",
    "art",
    "style",
    "trending",
    "artstation",
    "oil",
    "digital",
    "sketch",
    "modern",
    "vintage",
    "bright",
    "dark",
    "soft",
    "sharp",
    "detailed",
)

CONTEXT_LENGTH = 77  # CLIP's text context, kept for the tiny models so prompt-length logic behaves as in production


def clip_vocab_and_merges(words: Iterable[str] = DEFAULT_WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary in CLIP's format, with merges that make each of `words` a single token."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte-level alphabet, as CLIP's

    alphabet = list(bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    seen = set(tokens)
    for word in dict.fromkeys(w.lower() for w in words):
        if not word.isalpha() or not word.isascii() or len(word) < 2:
            continue
        symbols = [*list(word[:-1]), word[-1] + "</w>"]
        current = symbols[0]
        for symbol in symbols[1:]:
            merged = current + symbol
            if merged not in seen:
                merges.append((current, symbol))
                tokens.append(merged)
                seen.add(merged)
            current = merged
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def clip_tokenizer(words: Iterable[str] = DEFAULT_WORDS, model_max_length: int = CONTEXT_LENGTH):
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges(words)
    # transformers >= 5: the tokenizers-backed class takes an in-memory vocabulary (4.x's slow one wanted files)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def encoder_config(width: int, layers: int, heads: int) -> dict:
    """A transformer stack's size as CLIP's and BLIP's text and vision configs name it (an MLP 4x as wide)."""
    return {
        "hidden_size": width,
        "intermediate_size": 4 * width,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
    }


def clip_config(
    vocab_size: int,
    *,
    text: tuple[int, int, int] = (32, 2, 2),
    vision: tuple[int, int, int] = (32, 2, 2),
    image_size: int = 32,
    patch_size: int = 8,
    projection_dim: int = 32,
):
    """A CLIPConfig: `text` and `vision` are (width, layers, heads); the defaults are the tests' tiny model."""
    from transformers import CLIPConfig

    text_config = {
        **encoder_config(*text),
        "vocab_size": vocab_size,
        "max_position_embeddings": CONTEXT_LENGTH,
        "projection_dim": projection_dim,
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": vocab_size - 1,
    }
    vision_config = {
        **encoder_config(*vision),
        "image_size": image_size,
        "patch_size": patch_size,
        "projection_dim": projection_dim,
    }
    return CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=projection_dim)


def vit_b32_config(vocab_size: int | None = None):
    """openai/clip-vit-base-patch32's architecture: text 512 wide x 12 layers, vision 768 x 12, patch 32, image 224."""
    vit_b32 = {"text": (512, 12, 8), "vision": (768, 12, 12), "image_size": 224, "patch_size": 32}
    return clip_config(vocab_size or 49408, projection_dim=512, **vit_b32)


def save_tiny_clip(
    path: str | Path, *, words: Iterable[str] = DEFAULT_WORDS, seed: int = 0, config=None, **config_kwargs
) -> Path:
    """Write a random-weight CLIPModel + CLIPProcessor into `path` (a model directory, as staged in S3)."""
    import torch
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor

    path = Path(path)
    tokenizer = clip_tokenizer(words)
    if config is None:
        config = clip_config(len(tokenizer), **config_kwargs)
    image_size = config.vision_config.image_size
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def blip_tokenizer(words: Iterable[str] = DEFAULT_WORDS):
    from transformers import BertTokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab_tokens = BERT_SPECIALS + letters + ["##" + c for c in letters] + list("0123456789.,!?-'")
    vocab_tokens += [w for w in dict.fromkeys(w.lower() for w in words) if w not in vocab_tokens]
    vocab = {token: i for i, token in enumerate(vocab_tokens)}
    tokenizer = BertTokenizer(vocab=vocab, model_max_length=512)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return tokenizer


def save_tiny_blip(path: str | Path, *, words: Iterable[str] = DEFAULT_WORDS, seed: int = 0) -> Path:
    """Write a random-weight BlipForConditionalGeneration + BlipProcessor into `path`."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    path = Path(path)
    tokenizer = blip_tokenizer(words)
    width, image_size = 32, 32
    config = BlipConfig(
        text_config={
            **encoder_config(width, 2, 2),
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 64,
            "bos_token_id": tokenizer.convert_tokens_to_ids("[DEC]"),
            "pad_token_id": tokenizer.pad_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "eos_token_id": tokenizer.sep_token_id,
        },
        vision_config={**encoder_config(width, 2, 2), "image_size": image_size, "patch_size": 8},
        projection_dim=width,
    )
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(config).eval()
    image_processor = BlipImageProcessor(size={"height": image_size, "width": image_size})
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# ---- test images ----


def image_bytes(size: tuple[int, int] = (64, 48), fmt: str = "PNG", seed: int = 0, mode: str = "RGB") -> bytes:
    """A small noisy image (different seeds give different images) encoded as `fmt`."""
    from PIL import Image

    rng = random.Random(seed)
    w, h = size
    image = Image.new(mode, size)
    if mode == "RGB":
        image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(w * h)])
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def image_b64(size: tuple[int, int] = (64, 48), fmt: str = "PNG", seed: int = 0) -> str:
    return base64.b64encode(image_bytes(size, fmt, seed)).decode("ascii")


def huge_png_b64(side: int = 8000) -> str:
    """A PNG whose header declares side x side pixels but which compresses to a few kilobytes (a bilevel image)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")
