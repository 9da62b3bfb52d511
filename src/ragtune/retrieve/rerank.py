"""Reranking with a cross-encoder given by path (none is bundled, so it is off by default)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ragtune.errors import ConfigError
from ragtune.models.offline import ensure_offline
from ragtune.types import Hit


class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` re-scored for ``query``, best first."""
        ...


class CrossEncoderReranker:
    """Scores (query, chunk) pairs with a sentence-transformers CrossEncoder from a folder.

    Example:
        >>> r = CrossEncoderReranker("models/ms-marco-MiniLM-L-6-v2")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, batch_size: int = 32) -> None:
        folder = Path(path).expanduser()
        if not (folder / "config.json").exists():
            raise ConfigError(f"reranker {path}: not a model folder with a config.json; give "
                              "the path of a sentence-transformers CrossEncoder")
        ensure_offline()
        from sentence_transformers import CrossEncoder

        self.name = str(folder)
        self.batch_size = batch_size
        self._model: Any = CrossEncoder(str(folder), device="cpu", local_files_only=True)

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict([(query, h.chunk.index_text) for h in hits],
                                     batch_size=self.batch_size, show_progress_bar=False)
        rescored = [replace(h, score=float(s)) for h, s in zip(hits, scores, strict=True)]
        return sorted(rescored, key=lambda h: -h.score)
