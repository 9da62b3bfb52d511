"""Dense, lexical and hybrid retrievers over a vector store and a BM25 index."""

from __future__ import annotations

from ragtune.errors import ConfigError
from ragtune.index.bm25 import BM25Index
from ragtune.index.protocol import VectorStore
from ragtune.models.protocol import Embedder
from ragtune.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion
from ragtune.types import Hit

MODES = ("hybrid", "dense", "lexical")


class DenseRetriever:
    """Nearest neighbours of the query's embedding; scores are cosine similarities."""

    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def retrieve(self, query: str, k: int) -> list[Hit]:
        vector = self.embedder.embed([query])[0]
        return [Hit(chunk=c, score=s, dense_score=s) for c, s in self.store.search(vector, k)]


class LexicalRetriever:
    """BM25 over the chunk texts (with their context line); scores are BM25 scores."""

    def __init__(self, index: BM25Index, store: VectorStore) -> None:
        self.index = index
        self.store = store

    def retrieve(self, query: str, k: int) -> list[Hit]:
        ranked = self.index.search(query, k)
        chunks = self.store.get([i for i, _ in ranked])
        return [Hit(chunk=chunks[i], score=s, lexical_score=s) for i, s in ranked if i in chunks]


class HybridRetriever:
    """Fuses dense and lexical lists of depth ``candidates``: RRF by default, or weighted.

    With ``fusion="weighted"``, ``dense_weight`` is the weight of the dense list's
    min-max-normalised scores and ``1 - dense_weight`` that of the lexical list.
    """

    def __init__(self, dense: DenseRetriever, lexical: LexicalRetriever, *, candidates: int = 100,
                 rrf_k: int = 60, fusion: str = "rrf", dense_weight: float = 0.5) -> None:
        if fusion not in ("rrf", "weighted"):
            raise ConfigError(f"unknown fusion {fusion!r}; valid choices: rrf, weighted")
        self.dense = dense
        self.lexical = lexical
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.fusion = fusion
        self.dense_weight = dense_weight

    def retrieve(self, query: str, k: int) -> list[Hit]:
        depth = max(k, self.candidates)
        dense = self.dense.retrieve(query, depth)
        lexical = self.lexical.retrieve(query, depth)
        by_id = {h.chunk.id: h for h in lexical}
        by_id.update({h.chunk.id: h for h in dense})
        dense_scores = {h.chunk.id: h.score for h in dense}
        lexical_scores = {h.chunk.id: h.score for h in lexical}
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion(
                [[h.chunk.id for h in dense], [h.chunk.id for h in lexical]], k=self.rrf_k)
        else:
            fused = weighted_fusion(
                [[(h.chunk.id, h.score) for h in dense], [(h.chunk.id, h.score) for h in lexical]],
                [self.dense_weight, 1.0 - self.dense_weight])
        return [Hit(chunk=by_id[i].chunk, score=s, dense_score=dense_scores.get(i),
                    lexical_score=lexical_scores.get(i)) for i, s in fused[:k]]
