"""A bounded LRU cache of text embeddings, stored as rows of one tensor on the model's device.

Keys are the prompt texts CLIP encodes (the prompt template filled with a label), so a product taxonomy sent with
every request is encoded once per worker. The rows live in a single slab tensor that grows by doubling up to
`capacity` rows: memory is bounded by capacity x dim x element size, lookups of thousands of labels are one
index_select, and evicting a row just hands its slot to the next new key.

DJL runs one request at a time per Python worker, so the cache needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch

INITIAL_ROWS = 1024


class LabelEmbeddingCache:
    def __init__(
        self, capacity: int, dim: int, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self.dim = dim
        self.device = torch.device(device)
        self.dtype = dtype
        self._slots: OrderedDict[str, int] = OrderedDict()  # key -> row, least recently used first
        self._free: list[int] = []
        self._slab = torch.empty((0, dim), device=self.device, dtype=dtype)
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: str) -> bool:
        return key in self._slots

    @property
    def nbytes(self) -> int:
        """Bytes held by the slab (allocated rows, used or free)."""
        return self._slab.numel() * self._slab.element_size()

    @property
    def max_bytes(self) -> int:
        return self.capacity * self.dim * self._slab.element_size()

    def get_many(self, keys: Sequence[str], encode: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
        """Embeddings of `keys` as a (len(keys), dim) tensor; `encode` computes the missing ones (each once)."""
        rows = torch.empty((len(keys), self.dim), device=self.device, dtype=self.dtype)
        hit_positions: list[int] = []
        hit_slots: list[int] = []
        missing: dict[str, list[int]] = {}  # key -> positions, in first-seen order
        for position, key in enumerate(keys):
            slot = self._slots.get(key)
            if slot is None:
                missing.setdefault(key, []).append(position)
            else:
                self._slots.move_to_end(key)
                hit_positions.append(position)
                hit_slots.append(slot)
        self.hits += len(hit_positions)
        self.misses += len(missing)
        if hit_positions:
            rows[self._index(hit_positions)] = self._slab[self._index(hit_slots)]
        if missing:
            missing_keys = list(missing)
            encoded = encode(missing_keys).to(device=self.device, dtype=self.dtype)
            if encoded.shape != (len(missing_keys), self.dim):
                raise ValueError(f"encode returned {tuple(encoded.shape)}, expected ({len(missing_keys)}, {self.dim})")
            sources = [i for i, key in enumerate(missing_keys) for _ in missing[key]]
            targets = [p for key in missing_keys for p in missing[key]]
            rows[self._index(targets)] = encoded[self._index(sources)]
            self._insert(missing_keys, encoded)
        return rows

    def clear(self) -> None:
        self._slots.clear()
        self._free.clear()
        self._slab = torch.empty((0, self.dim), device=self.device, dtype=self.dtype)

    def _index(self, values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=self.device)

    def _insert(self, keys: list[str], embeddings: torch.Tensor) -> None:
        if self.capacity == 0:
            return
        if len(keys) > self.capacity:  # only the last `capacity` can stay anyway
            keys, embeddings = keys[-self.capacity :], embeddings[-self.capacity :]
        slots = [self._take_slot() for _ in keys]
        self._slab[self._index(slots)] = embeddings
        for key, slot in zip(keys, slots, strict=True):
            self._slots[key] = slot

    def _take_slot(self) -> int:
        if not self._free:
            allocated = self._slab.shape[0]
            if allocated < self.capacity:
                self._grow(min(self.capacity, max(INITIAL_ROWS, 2 * allocated)))
            else:
                _, slot = self._slots.popitem(last=False)
                self.evictions += 1
                return slot
        return self._free.pop()

    def _grow(self, rows: int) -> None:
        old = self._slab
        self._slab = torch.empty((rows, self.dim), device=self.device, dtype=self.dtype)
        self._slab[: old.shape[0]] = old
        # hand out low slots first: pop() takes from the end
        self._free.extend(range(rows - 1, old.shape[0] - 1, -1))
