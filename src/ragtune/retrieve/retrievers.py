"""Dense, lexical and hybrid retrievers over a vector store and a BM25 index.

Each retriever ranks chunk ids first (``rank``) and fetches chunks only for the hits it
returns (``retrieve``), so fusing deep candidate lists costs no chunk reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ragtune.documents.language import detect_language
from ragtune.errors import ConfigError
from ragtune.index.bm25 import BM25Index
from ragtune.index.reader import ReadView
from ragtune.models.protocol import Embedder, embed_queries
from ragtune.retrieve.filters import Filter
from ragtune.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion, zscore_fusion
from ragtune.types import Chunk, Hit


class Searchable(Protocol):
    """What retrievers read from: a vector store, or a knowledge base's in-memory view."""

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]: ...

    def get(self, ids: Sequence[str]) -> dict[str, Chunk]: ...


MODES = ("hybrid", "dense", "lexical")
FUSIONS = ("zscore", "score", "rrf", "minmax")
# the dense weight for a question in a language the knowledge base is not written in, where
# BM25 can match only its numbers and Latin names: chosen on XQuAD's dev half (even
# articles), Chinese questions over English paragraphs and English over Chinese
CROSS_LINGUAL_WEIGHT = 0.9


def _mask(source: Searchable, filter: Filter | None) -> np.ndarray | None:
    if filter is None or filter.empty:
        return None
    if not hasattr(source, "column"):
        raise ConfigError("filters need the knowledge base's read view; search through "
                          "KnowledgeBase.search")
    return filter.mask(source)


def _materialize(store: Searchable, ranked: list[tuple[str, float]],
                 dense: dict[str, float] | None = None,
                 lexical: dict[str, float] | None = None) -> list[Hit]:
    chunks = store.get([i for i, _ in ranked])
    return [Hit(chunk=chunks[i], score=s,
                dense_score=None if dense is None else dense.get(i),
                lexical_score=None if lexical is None else lexical.get(i))
            for i, s in ranked if i in chunks]


class DenseRetriever:
    """Nearest neighbours of the query's embedding; scores are cosine similarities."""

    def __init__(self, store: Searchable, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def rank(self, query: str, depth: int, mask: np.ndarray | None = None,
             ) -> list[tuple[str, float]]:
        return self.rank_vector(embed_queries(self.embedder, [query])[0], depth, mask)

    def rank_vector(self, vector: np.ndarray, depth: int, mask: np.ndarray | None = None,
                    ) -> list[tuple[str, float]]:
        if mask is None:
            return self.store.search(vector, depth)
        return self.store.search(vector, depth, mask=mask)  # type: ignore[call-arg]

    def retrieve(self, query: str, k: int, filter: Filter | None = None) -> list[Hit]:
        ranked = self.rank(query, k, _mask(self.store, filter))
        return _materialize(self.store, ranked, dense=dict(ranked))


class LexicalRetriever:
    """BM25 over the chunk texts (with their context line); scores are BM25 scores."""

    def __init__(self, index: BM25Index, store: Searchable) -> None:
        self.index = index
        self.store = store
        self._rows: np.ndarray | None = None

    def _view_rows(self) -> np.ndarray:
        """For each row of the BM25 index, its row in the view (masks are per view row)."""
        if self._rows is None:
            ids = getattr(self.store, "ids", [])
            where = {i: n for n, i in enumerate(ids)}
            self._rows = np.fromiter((where[i] for i in self.index.ids), dtype=np.int64,
                                     count=len(self.index))
        return self._rows

    def rank(self, query: str, depth: int, mask: np.ndarray | None = None,
             ) -> list[tuple[str, float]]:
        return self.rank_scores(self.index.scores(query), depth, mask)

    def rank_scores(self, scores: np.ndarray | None, depth: int, mask: np.ndarray | None = None,
                    ) -> list[tuple[str, float]]:
        """The best ``depth`` chunks of a :meth:`BM25Index.scores` array."""
        if mask is not None:
            mask = mask[self._view_rows()]
        return self.index.best(scores, depth, mask=mask)

    def retrieve(self, query: str, k: int, filter: Filter | None = None) -> list[Hit]:
        ranked = self.rank(query, k, _mask(self.store, filter))
        return _materialize(self.store, ranked, lexical=dict(ranked))


class HybridRetriever:
    """Fuses the dense and lexical lists, each ``candidates`` deep.

    ``fusion``:

    * ``"zscore"`` (default): ``w * z(cos) + (1 - w) * z(bm25)``, ``w = dense_weight``: every
      candidate from either list gets both scores, each standardised by the mean and
      standard deviation of that score over the whole collection.
    * ``"score"``: ``w * cos / max(cos) + (1 - w) * bm25 / max(bm25)``, each list scaled by
      its own best score; a chunk missing from a list adds 0.
    * ``"rrf"``: reciprocal-rank fusion with constant ``rrf_k`` (weights ``w`` and ``1 - w``).
    * ``"minmax"``: like ``score`` with each list scaled to [0, 1].

    The default was chosen on SciFact's train queries (``bench/tune_retrieval.py``).
    ``corpus_languages`` (see :func:`ragtune.retrieve.languages.corpus_languages`): a
    question in none of them gets at least ``cross_lingual_weight`` on the dense list,
    when the embedder knows its language (see :meth:`weight`).
    """

    def __init__(self, dense: DenseRetriever, lexical: LexicalRetriever, *, candidates: int = 300,
                 rrf_k: int = 60, fusion: str = "zscore", dense_weight: float = 0.75,
                 corpus_languages: Sequence[str] = (),
                 cross_lingual_weight: float = CROSS_LINGUAL_WEIGHT) -> None:
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}; valid choices: {', '.join(FUSIONS)}")
        if not 0.0 <= dense_weight <= 1.0:
            raise ConfigError(f"dense_weight must be between 0 and 1, got {dense_weight}")
        self.dense = dense
        self.lexical = lexical
        self.store = dense.store
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.corpus_languages = tuple(corpus_languages)
        self.cross_lingual_weight = cross_lingual_weight

    def weight(self, query: str) -> float:
        """The dense list's weight for ``query``: ``dense_weight``, except 0 when the
        embedder does not know the query's language (it would only add noise), and at
        least ``cross_lingual_weight`` when the knowledge base is not written in it and the
        embedder knows the knowledge base's languages too (BM25 then matches only numbers
        and names, which outweighed meaning at 0.75)."""
        language = detect_language(query)
        known = getattr(self.dense.embedder, "languages", None)
        if known and language not in known:
            return 0.0
        bridges = not known or set(self.corpus_languages) <= set(known)  # both sides known
        if self.corpus_languages and language not in self.corpus_languages and bridges:
            return max(self.dense_weight, self.cross_lingual_weight)
        return self.dense_weight

    def rank(self, query: str, depth: int, mask: np.ndarray | None = None,
             ) -> tuple[list[tuple[str, float]], dict[str, float], dict[str, float]]:
        depth = max(depth, self.candidates)
        dense_weight = self.weight(query)
        if self.fusion == "zscore":
            return self._zscore(query, depth, mask, dense_weight)
        lexical = self.lexical.rank(query, depth, mask)
        dense = self.dense.rank(query, depth, mask) if dense_weight > 0 else []
        weights = [dense_weight, 1.0 - dense_weight]
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in lexical]],
                                           k=self.rrf_k, weights=[2 * w for w in weights])
        else:
            fused = weighted_fusion([dense, lexical], weights,
                                    normalize="max" if self.fusion == "score" else "minmax")
        return fused, dict(dense), dict(lexical)

    def _zscore(self, query: str, depth: int, mask: np.ndarray | None, dense_weight: float,
                ) -> tuple[list[tuple[str, float]], dict[str, float], dict[str, float]]:
        """Candidates from both lists, each scored by both retrievers and standardised."""
        index = self.lexical.index
        full = index.scores(query)
        lexical = self.lexical.rank_scores(full, depth, mask)
        if dense_weight <= 0:
            return lexical, {}, dict(lexical)
        view = self.store
        if not isinstance(view, ReadView):
            raise ConfigError("zscore fusion needs the knowledge base's read view; search "
                              "through KnowledgeBase.search")
        vector = embed_queries(self.dense.embedder, [query])[0]
        dense = dict(self.dense.rank_vector(vector, depth, mask))
        ids = list(dict.fromkeys([*dense, *(i for i, _ in lexical)]))
        missing = [i for i in ids if i not in dense]
        if missing:
            cosines = view.vectors(missing) @ np.asarray(vector, dtype=np.float32)
            dense.update(zip(missing, map(float, cosines), strict=True))
        if full is None:
            bm25 = np.zeros(len(ids))
            lexical_moments = (0.0, 0.0)
        else:
            rows = index.rows(ids)
            bm25 = np.where(rows >= 0, full[rows], 0.0)
            lexical_moments = (float(full.mean()), float(full.std()))
        fused = zscore_fusion(ids, [[dense[i] for i in ids], bm25.tolist()],
                              [view.moments(vector), lexical_moments],
                              [dense_weight, 1.0 - dense_weight])
        return fused, dense, dict(zip(ids, bm25.tolist(), strict=True))

    def retrieve(self, query: str, k: int, filter: Filter | None = None) -> list[Hit]:
        fused, dense, lexical = self.rank(query, k, _mask(self.store, filter))
        return _materialize(self.store, fused[:k], dense, lexical)
