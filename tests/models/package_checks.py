"""What the package tests do to a worker the same way for every package: count model loads, break one call on
purpose, keep torch to one thread."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

SIMULATED_FAULT = "CUDA out of memory (simulated)"


class LoadSpy:
    """Records every from_pretrained call (class name, source) of the patched classes and of their subclasses."""

    def __init__(self, monkeypatch: Any, *classes: type) -> None:
        self.calls: list[tuple[str, str]] = []
        for cls in classes:
            loader = cls.from_pretrained.__func__  # type: ignore[attr-defined]  # a classmethod: its function

            def spy(klass: type, source: Any, *args: Any, _loader: Any = loader, **kwargs: Any) -> Any:
                self.calls.append((klass.__name__, str(source)))
                return _loader(klass, source, *args, **kwargs)

            monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))

    def names(self) -> list[str]:
        return sorted(name for name, _ in self.calls)


def break_when(monkeypatch: Any, owner: Any, method: str, when: Callable[..., bool]) -> None:
    """Make `owner.<method>` fail (a simulated accelerator fault) for the arguments `when` picks, and work as before
    for the others: one request that breaks the model, among requests that do not."""
    original = getattr(owner, method)

    def fragile(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            raise RuntimeError(SIMULATED_FAULT)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, method, fragile)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine thread hand-offs make each op
    10-50x slower; restore the setting afterwards (other packages' tests share the process)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def request_bytes(fields: Any, defaults: dict) -> bytes:
    """A bad-input case's request body: `fields` over `defaults` as a JSON object (a None value leaves the field
    out; NaN travels as the JSON extension token, which json.loads accepts), or `fields` itself when it is not an
    object (bytes as they are, any other value as its JSON)."""
    if isinstance(fields, dict):
        return json.dumps({k: v for k, v in {**defaults, **fields}.items() if v is not None}).encode()
    return fields if isinstance(fields, bytes) else json.dumps(fields).encode()
