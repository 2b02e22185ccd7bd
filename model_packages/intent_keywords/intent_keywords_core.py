"""Zero-shot intent (an NLI model) and keywords (KeyBERT over a sentence-transformers model).

Request parsing and validation, model loading (once per worker) and inference; `IntentKeywords` is the worker's
service, which model.py's `handle` drives through the shared batch driver (vlp_djl_support.handle_with: status
codes, batching, faults). Wire format: docs/model-contracts.md, "intent_keywords".
Module names are unique across model packages (tests load several packages into one interpreter).

Intent: each intent's description goes into the hypothesis template ("The user wants to {}."), the NLI model
scores premise (the text) against every hypothesis in one forward pass, and the entailment logits are
softmaxed across intents, so the scores sum to 1 (the single-label mode of Hugging Face's zero-shot pipeline).
Works with 3-way MNLI/XNLI heads (entailment, neutral, contradiction) and 2-way zero-shot heads
(entailment, not_entailment); a model without an entailment label (an SST-2 sentiment model) is refused at load.

Keywords: KeyBERT over the sentence-transformers model, with English stop words plus the request's `stop_words`
(default: `DEFAULT_STOP_WORDS`, the words of an instruction about an image, "outline", "picture", "every", ...),
removed before the candidate keyphrases are formed: "outline every dog in this picture" gives "dog", since the
pipeline turns keywords into detection prompts.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass
from typing import Any

import torch
from keybert import KeyBERT
from sentence_transformers import SentenceTransformer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from vlp_djl_support import (
    ModelLocation,
    ModelService,
    Properties,
    RequestError,
    load_pretrained,
    locate_model,
    model_id_fallback,
    option,
)

DEFAULT_NLI_ID = "MoritzLaurer/deberta-v3-base-zeroshot-v2.0"
DEFAULT_KEYWORD_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_INTENTS = {
    "describe": "describe or answer a question about the image",
    "segment": "find, locate or outline objects",
    "tag": "tag or categorize the product",
    "prompt": "write an image generation prompt",
    "other": "do something unrelated to the image",
}
DEFAULT_TEMPLATE = "The user wants to {}."
TASKS = ("intent", "keywords")
MAX_TOP_N = 20
MAX_NGRAM = 3
MAX_INTENT_NAME = 64
MAX_INTENT_DESCRIPTION = 300
NLI_PAIRS_PER_FORWARD = 64  # (text, hypothesis) pairs per NLI forward pass: bounds activation memory
MAX_STOP_WORDS = 500
MAX_STOP_WORD_CHARS = 50
# Words that say what to do with an image, never what is in it: keyword extraction drops them by default (the
# pipeline's keywords step sends the same list as `stop_words`: lambdas/vlp/pipeline/understand.py).
DEFAULT_STOP_WORDS: tuple[str, ...] = tuple(
    sorted(
        {
            *("segment", "segments", "segmented", "segmenting", "segmentation"),
            *("mask", "masks", "masked", "masking"),
            *("outline", "outlines", "outlined", "outlining"),
            *("highlight", "highlights", "highlighted", "highlighting"),
            *("cut", "cuts", "cutting", "cutout"),
            *("find", "finds", "finding", "locate", "locating", "detect", "detecting", "detection"),
            *("show", "shows", "showing", "identify", "point", "select", "isolate", "extract"),
            *("draw", "trace", "crop", "separate"),
            *("image", "images", "picture", "pictures", "photo", "photos", "photograph", "pic", "pics"),
            *("snapshot", "screenshot"),
            *("every", "each", "please", "thing", "things"),
        }
    )
)


# --------------------------------------------------------------------------------------------- settings


def validate_intents(intents: Any, max_intents: int) -> dict[str, str]:
    if not isinstance(intents, dict) or not intents:
        raise RequestError(
            "INVALID_INTENTS",
            "'intents' must be an object of intent name -> description, e.g. "
            '{"segment": "find, locate or outline objects", ...}',
        )
    if len(intents) < 2 or len(intents) > max_intents:
        raise RequestError(
            "INVALID_INTENTS",
            f"'intents' has {len(intents)} entries; send 2 to {max_intents}",
        )
    for name, description in intents.items():
        if not name.strip() or len(name) > MAX_INTENT_NAME:
            raise RequestError("INVALID_INTENTS", f"intent names are 1 to {MAX_INTENT_NAME} characters")
        if not isinstance(description, str) or not description.strip() or len(description) > MAX_INTENT_DESCRIPTION:
            raise RequestError(
                "INVALID_INTENTS",
                f"the description of intent {name[:64]!r} must be a string of 1 to {MAX_INTENT_DESCRIPTION} characters",
            )
    return {name: description.strip() for name, description in intents.items()}


@dataclass(frozen=True)
class Settings:
    """Worker settings from serving.properties (the `option.` prefix removed by DJL)."""

    nli: ModelLocation
    keywords: ModelLocation  # the sentence-transformers model
    intents: dict
    hypothesis_template: str = option(DEFAULT_TEMPLATE)
    max_text_chars: int = option(2000, low=1)
    max_intents: int = option(20, low=2)

    @classmethod
    def from_properties(cls, props: Properties) -> Settings:
        root = props.get_str("model_id")
        nli = locate_model(props, "nli_model_id", "model_name", [root], model_id_fallback(root, DEFAULT_NLI_ID))
        keywords = locate_model(props, "keyword_model_id", "keyword_model_name", [root])
        settings = props.read(cls, nli=nli, keywords=keywords, intents=DEFAULT_INTENTS)
        if settings.hypothesis_template.count("{}") != 1:
            raise ValueError(f"option.hypothesis_template must contain {{}} once, got {settings.hypothesis_template!r}")
        raw_intents = props.get_str("intents")
        try:
            intents = json.loads(raw_intents) if raw_intents else DEFAULT_INTENTS
            return dataclasses.replace(settings, intents=validate_intents(intents, settings.max_intents))
        except (ValueError, RequestError) as exc:
            raise ValueError(
                f"option.intents must be a JSON object of 2 to {settings.max_intents} intent name -> description: {exc}"
            ) from None


def entailment_index(id2label: dict) -> int:
    for index, label in id2label.items():
        if str(label).lower().startswith("entail"):
            return int(index)
    raise ValueError(
        f"the NLI model has no entailment label (labels: {dict(id2label)}); intent classification "
        "needs an NLI model (MNLI/XNLI or zero-shot), not a sentiment or topic classifier"
    )


# --------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class IntentRequest:
    text: str
    tasks: tuple[str, ...]
    intents: dict[str, str]
    top_n: int
    ngram_range: tuple[int, int]
    stop_words: tuple[str, ...] = DEFAULT_STOP_WORDS  # on top of the English stop words


def _stop_words(value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_STOP_WORDS
    if not isinstance(value, list) or len(value) > MAX_STOP_WORDS:
        raise RequestError(
            "INVALID_REQUEST",
            f"'stop_words' must be a list of at most {MAX_STOP_WORDS} words",
        )
    words = []
    for index, word in enumerate(value):
        if not isinstance(word, str) or not word.strip() or len(word) > MAX_STOP_WORD_CHARS or len(word.split()) != 1:
            raise RequestError(
                "INVALID_REQUEST",
                f"stop_words[{index}] must be one word of 1 to {MAX_STOP_WORD_CHARS} characters",
            )
        words.append(word.strip().lower())
    return tuple(dict.fromkeys(words))


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise RequestError("INVALID_REQUEST", f"'{key}' must be an integer, got {json.dumps(value)[:50]}")
    return int(value)


def parse_request(body: Any, settings: Settings) -> IntentRequest:
    if not isinstance(body, dict):
        raise RequestError("INVALID_REQUEST", "the request body must be a JSON object")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise RequestError("INVALID_REQUEST", "'text' must be a string")
    if not text or not text.strip():
        raise RequestError("EMPTY_TEXT", "'text' is required and must not be blank")
    if len(text) > settings.max_text_chars:
        raise RequestError(
            "TEXT_TOO_LONG",
            f"'text' is {len(text)} characters; at most {settings.max_text_chars}",
            413,
        )
    tasks = body.get("tasks", list(TASKS))
    if tasks is None:
        tasks = list(TASKS)
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise RequestError("INVALID_REQUEST", "'tasks' must be a non-empty list of task names")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise RequestError(
            "UNKNOWN_TASK",
            f"unknown task {unknown[0][:50]!r}; tasks are {', '.join(TASKS)}",
        )
    intents = body.get("intents")
    intents = settings.intents if intents is None else validate_intents(intents, settings.max_intents)
    top_n = _integer(body.get("top_n", 5) if body.get("top_n") is not None else 5, "top_n")
    if not 1 <= top_n <= MAX_TOP_N:
        raise RequestError("VALUE_OUT_OF_RANGE", f"'top_n' must be between 1 and {MAX_TOP_N}, got {top_n}")
    ngram = body.get("keyphrase_ngram_range", [1, 2])
    if ngram is None:
        ngram = [1, 2]
    if not isinstance(ngram, list) or len(ngram) != 2:
        raise RequestError("INVALID_REQUEST", "'keyphrase_ngram_range' must be a list [min, max]")
    low, high = (_integer(v, "keyphrase_ngram_range") for v in ngram)
    if not 1 <= low <= high <= MAX_NGRAM:
        raise RequestError(
            "VALUE_OUT_OF_RANGE",
            f"'keyphrase_ngram_range' needs 1 <= min <= max <= {MAX_NGRAM}, got [{low}, {high}]",
        )
    ordered = tuple(t for t in TASKS if t in tasks)
    return IntentRequest(text.strip(), ordered, intents, top_n, (low, high), _stop_words(body.get("stop_words")))


# --------------------------------------------------------------------------------------------- models


class IntentKeywords(ModelService):
    """The worker's service: the NLI model and the keyword model, loaded once per worker; `run` serves a list of
    requests, the NLI pairs of all in shared forward passes."""

    settings_cls = Settings
    settings: Settings

    def load(self) -> None:
        settings = self.settings
        self.tokenizer = AutoTokenizer.from_pretrained(settings.nli.source)
        self.nli = load_pretrained(AutoModelForSequenceClassification, settings.nli.source, self.device, self.dtype)
        self.entailment = entailment_index(self.nli.config.id2label)
        self._forward_args = set(inspect.signature(self.nli.forward).parameters)
        self.max_length = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 512)
        # The keyword model stays fp32: it is small, and cosine similarities are what KeyBERT ranks by.
        self.embedder = SentenceTransformer(settings.keywords.source, device=str(self.device))
        self.keybert = KeyBERT(model=self.embedder)

    def parse_body(self, body: dict) -> IntentRequest:
        return parse_request(body, self.settings)

    def run(self, requests: list[IntentRequest]) -> list[dict]:
        """One response per request; the intents of all of them are classified together. A fault escapes, and the
        shared driver retries the requests one by one, so only the request that causes it fails."""
        asked = [r for r in requests if "intent" in r.tasks]
        intents = iter(self.classify_many([(r.text, r.intents) for r in asked]) if asked else [])
        return [self.respond(r, next(intents) if "intent" in r.tasks else None) for r in requests]

    def respond(self, request: IntentRequest, intent: dict | None) -> dict:
        response: dict[str, Any] = {}
        if intent is not None:
            response["intent"] = intent
        if "keywords" in request.tasks:
            response["keywords"] = self.keywords(request.text, request.top_n, request.ngram_range, request.stop_words)
        response["model"] = self.settings.nli.name
        response["keyword_model"] = self.settings.keywords.name
        return response

    @torch.inference_mode()
    def classify_many(self, items: list[tuple[str, dict[str, str]]]) -> list[dict]:
        """Intent for several texts: every (text, hypothesis) pair of the batch in shared forward passes."""
        pairs = [
            (text, self.settings.hypothesis_template.format(description))
            for text, intents in items
            for description in intents.values()
        ]
        logits = []
        for start in range(0, len(pairs), NLI_PAIRS_PER_FORWARD):
            chunk = pairs[start : start + NLI_PAIRS_PER_FORWARD]
            batch = self.tokenizer(
                [p for p, _ in chunk],
                [h for _, h in chunk],
                truncation="only_first",
                padding=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            batch = {k: v.to(self.device) for k, v in batch.items() if k in self._forward_args}
            logits.append(self.nli(**batch).logits.float()[:, self.entailment].cpu())
        entailment = torch.cat(logits)
        results, offset = [], 0
        for _, intents in items:
            names = list(intents)
            scores = torch.softmax(entailment[offset : offset + len(names)], dim=0).tolist()
            offset += len(names)
            best = max(range(len(names)), key=lambda i: scores[i])
            results.append(
                {
                    "label": names[best],
                    "score": round(scores[best], 4),
                    "scores": {name: round(score, 4) for name, score in zip(names, scores, strict=True)},
                }
            )
        return results

    def keywords(
        self, text: str, top_n: int, ngram_range: tuple[int, int], stop_words: tuple[str, ...] = DEFAULT_STOP_WORDS
    ) -> list[dict]:
        # scikit-learn's English list is what KeyBERT's stop_words="english" means; the extra words join it
        words = sorted(ENGLISH_STOP_WORDS.union(stop_words))
        found = self.keybert.extract_keywords(text, keyphrase_ngram_range=ngram_range, stop_words=words, top_n=top_n)
        return [{"keyword": keyword, "score": round(float(score), 4)} for keyword, score in found]
