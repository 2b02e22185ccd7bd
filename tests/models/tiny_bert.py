"""A BERT-style wordpiece tokenizer over a small written vocabulary, for the tiny random-weight models of the
grounded_sam and intent_keywords tests and bench/grounded_sam.py: words outside it tokenize to [UNK]."""

from __future__ import annotations

from pathlib import Path

# BERT's special tokens and the punctuation every prompt may carry: the start of every tiny vocabulary.
BASE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","]


def bert_tokenizer(directory: Path, vocab: list[str]):
    """Write `vocab` as directory/vocab.txt and return a lower-casing BertTokenizer over it."""
    from transformers import BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizer(str(directory / "vocab.txt"), do_lower_case=True)
