"""The Retriever role: a query in, ranked hits out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ragtune.types import Hit


@runtime_checkable
class Retriever(Protocol):
    def retrieve(self, query: str, k: int) -> list[Hit]:
        """Up to ``k`` hits, best first."""
        ...
