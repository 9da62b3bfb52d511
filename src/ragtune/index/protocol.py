"""The VectorStore role: chunks with their vectors, searchable by vector."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ragtune.types import Chunk


@runtime_checkable
class VectorStore(Protocol):
    """Stores chunks and L2-normalised vectors; ``search`` returns cosine similarities.

    Implementations: :class:`ragtune.index.lancedb_store.LanceDBStore`. Every
    implementation passes :func:`ragtune.testing.contracts.check_vector_store`.
    """

    dimension: int

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert chunks; ``vectors`` has shape ``(len(chunks), dimension)``."""
        ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Ids and cosine similarities of the ``k`` nearest chunks to ``vector`` (shape
        ``(dimension,)``), best first; :meth:`get` fetches the chunks."""
        ...

    def get(self, ids: Sequence[str]) -> dict[str, Chunk]: ...

    def scan(self) -> Iterator[Chunk]:
        """Every stored chunk, in no particular order."""
        ...
