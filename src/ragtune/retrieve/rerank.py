"""Reranking with a cross-encoder given by path (none is bundled, so it is off by default).

Rerankers are registered by name in the ``ragtune.rerankers`` entry-point group
(:data:`RERANKERS`); ``retrieval.reranker_backend`` names the one that runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ragtune.components import Registry
from ragtune.config import RetrievalSettings
from ragtune.errors import ConfigError
from ragtune.models.offline import ensure_offline
from ragtune.types import Hit


class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` re-scored for ``query``, best first."""
        ...


RERANKERS: Registry[Callable[[RetrievalSettings], Reranker]] = Registry("rerankers",
                                                                          "reranker")


def build_reranker(settings: RetrievalSettings) -> Reranker | None:
    """The reranker the settings name (``reranker_backend``, given ``reranker``), or None
    when ``reranker`` is empty (no reranking)."""
    if not settings.reranker:
        return None
    return RERANKERS[settings.reranker_backend](settings)


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

    @classmethod
    def from_settings(cls, settings: RetrievalSettings) -> CrossEncoderReranker:
        """The ``cross-encoder`` reranker: the folder ``retrieval.reranker``."""
        return cls(settings.reranker)

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict([(query, h.chunk.index_text) for h in hits],
                                     batch_size=self.batch_size, show_progress_bar=False)
        rescored = [replace(h, score=float(s)) for h, s in zip(hits, scores, strict=True)]
        return sorted(rescored, key=lambda h: -h.score)
