"""The two model roles: an Embedder turns text into vectors, a Generator writes text."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ragtune.types import Completion, Message


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of shape ``(len(texts), dimension)``.

    ``embed`` embeds documents. A model trained to embed questions differently (such as
    multilingual-e5's ``"query: "`` prefix) also has ``embed_queries(texts)``; search calls
    :func:`embed_queries`, which uses it when it is there.
    """

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text in the embedder's own tokenizer, special tokens excluded."""
        ...


def embed_queries(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Search questions' vectors: the embedder's ``embed_queries`` when it has one (a model
    with a query instruction), else ``embed``."""
    method = getattr(embedder, "embed_queries", None)
    return method(texts) if method is not None else embedder.embed(texts)  # type: ignore[no-any-return]


@runtime_checkable
class Generator(Protocol):
    """Writes a chat completion; counts tokens with its own tokenizer.

    ``context_window`` is the model's total budget in tokens (prompt + output).
    """

    name: str
    context_window: int

    def count_tokens(self, messages: Sequence[Message]) -> int: ...

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float = 0.0
    ) -> Completion: ...

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float = 0.0
    ) -> Iterator[str]: ...
