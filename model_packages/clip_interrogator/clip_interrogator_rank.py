"""clip-interrogator's prompt building, reimplemented over transformers CLIP embeddings.

Adapted from clip-interrogator 0.6.0 (pharmapsychotic, MIT; see data/LICENSE.clip-interrogator). The modes:
- fast: the caption, then the terms of all positive tables most similar to the image, as many as fit;
- classic: caption, best medium + artist, trending, movement, then the top flavors;
- best: a greedy chain from the caption over the top `flavor_intermediate_count` terms, keeping each addition that
  raises the prompt's similarity to the image (at least `min_flavors`, at most `max_flavors`), then the most
  similar of caption / classic / fast / chain;
- negative: the same chain, minimising similarity, over the least similar flavors plus the negative table.

Differences from the original, on purpose:
- ranking a table is an exact top-k over all its rows (the original keeps a per-chunk top-k to save memory);
- the negative chain starts from the negated similarity of its first term (the original compares negated
  candidates with a positive start value, so its chain rarely moves past the first term);
- the chained prompt is kept within CLIP's context (the original may return one term past it), and a chain that
  starts without a caption (negative) counts its first term, so it never holds more than max_flavors terms;
- terms are tracked as a list, so a term containing ", " cannot corrupt the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Encode = Callable[[Sequence[str]], torch.Tensor]  # texts -> (n, dim) L2-normalised
Fits = Callable[[str], bool]  # whether a prompt fits CLIP's context


@dataclass
class TermTable:
    name: str
    labels: list[str]
    embeds: torch.Tensor  # (len(labels), dim), L2-normalised

    def top(self, image_features: torch.Tensor, count: int, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarities, indices) of the `count` most (or, reversed, least) similar rows, best first."""
        similarity = (self.embeds @ image_features.to(self.embeds.dtype)).float()
        if reverse:
            similarity = -similarity
        values, indices = torch.topk(similarity, min(count, len(self.labels)))
        return values, indices

    def rank(self, image_features: torch.Tensor, count: int, reverse: bool = False) -> list[str]:
        _, indices = self.top(image_features, count, reverse)
        return [self.labels[i] for i in indices.tolist()]


def rank_tables(
    tables: Sequence[TermTable], image_features: torch.Tensor, count: int, reverse: bool = False
) -> list[str]:
    """Exact top-`count` over the union of `tables` (per-table top-k, then a top-k of those)."""
    values, labels = [], []
    for table in tables:
        table_values, table_indices = table.top(image_features, count, reverse)
        values.append(table_values)
        labels += [table.labels[i] for i in table_indices.tolist()]
    if not labels:
        return []
    merged = torch.cat(values)
    order = torch.topk(merged, min(count, len(labels))).indices.tolist()
    return list(dict.fromkeys(labels[i] for i in order))


def join(head: str, terms: Sequence[str]) -> str:
    return ", ".join(([head] if head else []) + list(terms))


@dataclass
class Prompt:
    text: str
    terms: list[str]  # the table terms the prompt contains, in order


class Interrogator:
    def __init__(
        self,
        tables: dict[str, TermTable],
        encode: Encode,
        fits: Fits,
        *,
        chunk_size: int = 1024,
        flavor_intermediate_count: int = 1024,
    ) -> None:
        self.tables = tables
        self.encode = encode
        self.fits = fits
        self.chunk_size = chunk_size
        self.flavor_intermediate_count = flavor_intermediate_count

    @property
    def positive(self) -> list[TermTable]:
        return [self.tables[n] for n in ("artists", "flavors", "mediums", "movements", "trendings")]

    # ---- similarity ----

    def similarities(self, image_features: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Cosine similarity of each text to the image, float32 (len(texts),), encoded in chunks."""
        parts = []
        for start in range(0, len(texts), self.chunk_size):
            embeds = self.encode(texts[start : start + self.chunk_size])
            parts.append((embeds @ image_features.to(embeds.dtype)).float())
        return torch.cat(parts) if parts else torch.empty(0)

    def similarity(self, image_features: torch.Tensor, text: str) -> float:
        return float(self.similarities(image_features, [text])[0])

    def rank_top(self, image_features: torch.Tensor, texts: Sequence[str], reverse: bool = False) -> tuple[int, float]:
        """Index of the most (reversed: least) similar text, and its (reversed: negated) similarity."""
        similarity = self.similarities(image_features, texts)
        if reverse:
            similarity = -similarity
        index = int(torch.argmax(similarity))
        return index, float(similarity[index])

    def fit(self, head: str, terms: Sequence[str]) -> list[str]:
        """The leading `terms` that fit after `head` (clip-interrogator's _truncate_to_fit)."""
        kept: list[str] = []
        for term in terms:
            if not self.fits(join(head, [*kept, term])):
                break
            kept.append(term)
        return kept

    # ---- modes ----

    def fast(self, image_features: torch.Tensor, caption: str, max_flavors: int) -> Prompt:
        terms = self.fit(caption, rank_tables(self.positive, image_features, max_flavors))
        return Prompt(join(caption, terms), terms)

    def classic(self, image_features: torch.Tensor, caption: str, max_flavors: int) -> Prompt:
        medium = self.tables["mediums"].rank(image_features, 1)[0]
        artist = self.tables["artists"].rank(image_features, 1)[0]
        trending = self.tables["trendings"].rank(image_features, 1)[0]
        movement = self.tables["movements"].rank(image_features, 1)[0]
        flavors = self.tables["flavors"].rank(image_features, max_flavors)
        if caption.startswith(medium):
            head, head_terms = f"{caption} {artist}", [medium, artist]
            parts = [(trending, [trending]), (movement, [movement])]
        else:
            head, head_terms = caption, []
            parts = [(f"{medium} {artist}", [medium, artist]), (trending, [trending]), (movement, [movement])]
        parts += [(flavor, [flavor]) for flavor in flavors]
        kept = self.fit(head, [text for text, _ in parts])
        terms = head_terms + [term for _, part_terms in parts[: len(kept)] for term in part_terms]
        return Prompt(join(head, kept), terms)

    def chain(
        self,
        image_features: torch.Tensor,
        phrases: Sequence[str],
        head: str = "",
        head_sim: float | None = None,
        min_count: int = 8,
        max_count: int = 32,
        reverse: bool = False,
    ) -> Prompt:
        """Greedily add the phrase that makes the prompt most (reversed: least) similar to the image."""
        phrases = list(dict.fromkeys(phrases))
        terms: list[str] = []
        if not head:  # start from the single best phrase: it counts as the first term
            if not phrases or max_count < 1:
                return Prompt("", [])
            index, head_sim = self.rank_top(image_features, phrases, reverse)
            terms = [phrases.pop(index)]
            min_count, max_count = min_count - 1, max_count - 1
        elif head_sim is None:
            head_sim = self.similarity(image_features, head) * (-1 if reverse else 1)
        best = Prompt(join(head, terms), list(terms))
        best_sim = curr_sim = head_sim
        for step in range(max_count):
            if not phrases:
                break
            current = join(head, terms)
            index, sim = self.rank_top(image_features, [f"{current}, {p}" for p in phrases], reverse)
            candidate = [*terms, phrases[index]]
            if not self.fits(join(head, candidate)):
                break
            if sim > best_sim:
                best, best_sim = Prompt(join(head, candidate), list(candidate)), sim
            if not (sim > curr_sim or step < min_count):
                break
            terms, curr_sim = candidate, sim
            phrases.pop(index)
        return best

    def best(self, image_features: torch.Tensor, caption: str, min_flavors: int, max_flavors: int) -> Prompt:
        candidates_terms = rank_tables(self.positive, image_features, self.flavor_intermediate_count)
        chained = self.chain(
            image_features,
            candidates_terms,
            head=caption,
            head_sim=self.similarity(image_features, caption) if caption else None,
            min_count=min_flavors,
            max_count=max_flavors,
        )
        candidates = [
            Prompt(caption, []),
            self.classic(image_features, caption, max_flavors),
            self.fast(image_features, caption, max_flavors),
            chained,
        ]
        candidates = [c for c in candidates if c.text]
        if not candidates:
            return Prompt("", [])
        scores = self.similarities(image_features, [c.text for c in candidates])
        return candidates[int(torch.argmax(scores))]

    def negative(self, image_features: torch.Tensor, min_flavors: int, max_flavors: int) -> Prompt:
        phrases = self.tables["flavors"].rank(image_features, self.flavor_intermediate_count, reverse=True)
        phrases += self.tables["negative"].labels
        return self.chain(image_features, phrases, min_count=min_flavors, max_count=max_flavors, reverse=True)
