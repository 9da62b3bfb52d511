"""A search: a retriever, then optional reranking and MMR diversity, with a filter."""

from __future__ import annotations

from typing import Any

import numpy as np

from ragtune.retrieve.diversity import mmr
from ragtune.retrieve.filters import Filter
from ragtune.retrieve.rerank import Reranker
from ragtune.types import Hit


class SearchPipeline:
    """``retriever`` → (``reranker`` over the top ``rerank_depth``) → (MMR with
    ``mmr_lambda`` over the top ``mmr_depth``) → ``k`` hits.

    Example:
        >>> SearchPipeline(kb.retriever(), mmr_lambda=0.7).retrieve("q", 5)  # doctest: +SKIP
    """

    def __init__(self, retriever: Any, *, view: Any = None, reranker: Reranker | None = None,
                 rerank_depth: int = 30, mmr_lambda: float | None = None,
                 mmr_depth: int = 20) -> None:
        self.retriever = retriever
        self.view = view
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self.mmr_lambda = mmr_lambda
        self.mmr_depth = mmr_depth

    def retrieve(self, query: str, k: int, filter: Filter | None = None) -> list[Hit]:
        depth = k
        if self.reranker is not None:
            depth = max(depth, self.rerank_depth)
        if self.mmr_lambda is not None:
            depth = max(depth, self.mmr_depth)
        if filter is None or filter.empty:
            hits = self.retriever.retrieve(query, depth)
        else:
            hits = self.retriever.retrieve(query, depth, filter=filter)
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits[: self.rerank_depth])
        if self.mmr_lambda is not None and self.view is not None and len(hits) > 1:
            vectors = self.view.vectors([h.chunk.id for h in hits])
            order = mmr(np.array([h.score for h in hits]), vectors, k, self.mmr_lambda)
            hits = [hits[i] for i in order]
        return hits[:k]
