"""The lexical index: BM25 (bm25s) over chunk texts, saved as a folder of JSON + arrays.

Defaults ``k1=0.9, b=0.4`` are Anserini's, the setting of the BEIR BM25 baseline
(Thakur et al. 2021). The folder holds bm25s' arrays, ``ids.json`` (row → chunk id) and
``meta.json``; it is rebuilt whole and swapped in atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import KnowledgeBaseError
from ragtune.index.tokenize import TOKENIZER_VERSION, tokenize


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, largest first (ties by lower index)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return top[np.lexsort((top, -scores[top]))]


class BM25Index:
    """BM25 over chunk texts with ragtune's CJK-aware tokenizer.

    Example:
        >>> idx = BM25Index.build(["a", "b"], ["cats purr", "dogs bark"])
        >>> idx.search("cat", k=1)[0][0]
        'a'
    """

    def __init__(self, ids: list[str], retriever: Any, k1: float, b: float,
                 store_version: int | None = None) -> None:
        self.ids = ids
        self.store_version = store_version  # the store version the index was built from
        self._retriever = retriever
        self.k1 = k1
        self.b = b
        self._vocab: dict[str, int] = retriever.vocab_dict if retriever is not None else {}
        self._row: dict[str, int] | None = None

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], k1: float = 0.9,
              b: float = 0.4, store_version: int | None = None) -> BM25Index:
        import bm25s

        if not ids:
            return cls([], None, k1, b, store_version)
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index([tokenize(t) for t in texts], show_progress=False)
        return cls(list(ids), retriever, k1, b, store_version)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 score of every row for ``query``, shape ``(len(self),)``; None if no term
        of the query is in the index.

        Sums the precomputed per-term scores of bm25s' eager index over the query's terms
        (repeated terms count again, as in bm25s and Lucene) with one ``bincount``.
        """
        if self._retriever is None:
            return None
        term_ids = [self._vocab[t] for t in tokenize(query) if t in self._vocab]
        if not term_ids:
            return None
        arrays = self._retriever.scores
        indptr, indices, data = arrays["indptr"], arrays["indices"], arrays["data"]
        rows = [indices[indptr[t]:indptr[t + 1]] for t in term_ids]
        weights = [data[indptr[t]:indptr[t + 1]] for t in term_ids]
        return np.bincount(np.concatenate(rows), weights=np.concatenate(weights),
                           minlength=len(self.ids))

    def search(self, query: str, k: int = 10, mask: np.ndarray | None = None,
               ) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs with a positive score, best first.

        ``mask`` (booleans, one per row) keeps only the rows where it is true.
        """
        if k <= 0:
            return []
        return self.best(self.scores(query), k, mask)

    def best(self, scores: np.ndarray | None, k: int, mask: np.ndarray | None = None,
             ) -> list[tuple[str, float]]:
        """The ``k`` best (chunk id, score) pairs of a :meth:`scores` array (positive only)."""
        if scores is None or k <= 0:
            return []
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        top = top_k(scores, k)
        return [(self.ids[int(i)], float(scores[i])) for i in top if scores[i] > 0]

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """The row of each chunk id in :meth:`scores` arrays (-1 for ids not indexed)."""
        if self._row is None:
            self._row = {i: n for n, i in enumerate(self.ids)}
        return np.fromiter((self._row.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))

    def save(self, folder: Path) -> None:
        """Write to ``folder`` through a temporary sibling, then swap it in."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".lexical-"))
        try:
            if self._retriever is not None:
                self._retriever.save(str(tmp), show_progress=False)
            (tmp / "ids.json").write_text(json.dumps(self.ids))
            (tmp / "meta.json").write_text(json.dumps({
                "format_version": 1, "tokenizer": TOKENIZER_VERSION, "k1": self.k1,
                "b": self.b, "count": len(self.ids), "store_version": self.store_version,
            }, indent=2))
            old = folder.with_name(folder.name + ".old")
            if folder.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def stored_version(folder: Path) -> int | None:
        """The store version a saved index was built from (``None`` if absent or unreadable)."""
        try:
            version = json.loads((folder / "meta.json").read_text()).get("store_version")
        except (OSError, ValueError):
            return None
        return int(version) if version is not None else None

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        import bm25s

        try:
            meta = json.loads((folder / "meta.json").read_text())
            ids = json.loads((folder / "ids.json").read_text())
        except (OSError, ValueError) as exc:
            raise KnowledgeBaseError(
                f"lexical index in {folder} is missing or unreadable ({exc}); "
                "rebuild it with: ragtune kb verify --repair"
            ) from None
        if meta.get("tokenizer") != TOKENIZER_VERSION:
            raise KnowledgeBaseError(
                f"lexical index in {folder} was built with tokenizer {meta.get('tokenizer')!r}, "
                f"this version uses {TOKENIZER_VERSION!r}; rebuild it: ragtune kb verify --repair"
            )
        retriever = bm25s.BM25.load(str(folder), show_progress=False) if ids else None
        return cls(ids, retriever, float(meta["k1"]), float(meta["b"]),
                   meta.get("store_version"))
