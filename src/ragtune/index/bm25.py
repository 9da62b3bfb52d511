"""The lexical index: BM25 (bm25s) over chunk texts, saved as a folder of JSON + arrays.

Defaults ``k1=0.9, b=0.4`` are Anserini's, the setting of the BEIR BM25 baseline
(Thakur et al. 2021). The folder holds bm25s' arrays, ``ids.json`` (row → chunk id),
``meta.json`` and the tokenised corpus (``tokens.npz`` and ``vocab.json``: the term ids of
every row), so that a write re-indexes from tokens: only the chunks it adds are tokenised
and the store is not read again (:meth:`BM25Index.updated`). BM25 weights depend on the
whole corpus (document count, average length), so bm25s' arrays are recomputed from the
tokens on every change; the folder is written whole and swapped in atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Corpus:
    """Tokenised chunk texts: row ``i`` holds the term ids ``tokens[offsets[i]:offsets[i + 1]]``
    into ``vocab``."""

    vocab: list[str]
    offsets: np.ndarray  # int64, one more than the rows
    tokens: np.ndarray  # int32

    @classmethod
    def of(cls, texts: Sequence[str]) -> Corpus:
        return cls([], np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32)).updated(
            np.zeros(0, dtype=bool), texts)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def updated(self, keep: np.ndarray, texts: Sequence[str]) -> Corpus:
        """The rows where ``keep`` (one boolean per row) is true, in order, then the
        tokenised ``texts``; terms no row uses any more leave the vocabulary."""
        lengths = np.diff(self.offsets)
        kept = self.tokens[np.repeat(keep, lengths)]
        terms = {t: n for n, t in enumerate(self.vocab)}
        vocab = list(self.vocab)
        added: list[int] = []
        new_lengths = []
        for text in texts:
            row = tokenize(text)
            for t in row:
                if t not in terms:
                    terms[t] = len(vocab)
                    vocab.append(t)
            added.extend(terms[t] for t in row)
            new_lengths.append(len(row))
        flat = np.concatenate([kept, np.asarray(added, dtype=np.int64)])
        used, inverse = np.unique(flat, return_inverse=True)
        sizes = np.concatenate([lengths[keep], np.asarray(new_lengths, dtype=np.int64)])
        return Corpus([vocab[int(u)] for u in used],
                      np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                      inverse.astype(np.int32).reshape(-1))

    def rows(self) -> list[list[int]]:
        return [part.tolist() for part in np.split(self.tokens, self.offsets[1:-1])]

    def save(self, folder: Path) -> None:
        np.savez(folder / "tokens.npz", offsets=self.offsets, tokens=self.tokens)
        (folder / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False),
                                           encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, rows: int) -> Corpus | None:
        """The saved corpus of ``rows`` rows; None when absent (an index from before it was
        saved) or not matching."""
        try:
            with np.load(folder / "tokens.npz") as saved:
                offsets, tokens = saved["offsets"], saved["tokens"]
            vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        except (OSError, KeyError, ValueError):
            return None
        if (len(offsets) != rows + 1 or offsets[-1] != len(tokens)
                or (len(tokens) and int(tokens.max()) >= len(vocab))):
            return None
        return cls(vocab, offsets, tokens)


class BM25Index:
    """BM25 over chunk texts with ragtune's CJK-aware tokenizer.

    Example:
        >>> idx = BM25Index.build(["a", "b"], ["cats purr", "dogs bark"])
        >>> idx.search("cat", k=1)[0][0]
        'a'
    """

    def __init__(self, ids: list[str], retriever: Any, k1: float, b: float,
                 store_version: int | None = None, corpus: Corpus | None = None) -> None:
        self.ids = ids
        self.store_version = store_version  # the store version the index was built from
        self.corpus = corpus  # None for an index saved before the corpus was kept
        self._retriever = retriever
        self.k1 = k1
        self.b = b
        self._vocab: dict[str, int] = retriever.vocab_dict if retriever is not None else {}
        self._row: dict[str, int] | None = None

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], k1: float = 0.9,
              b: float = 0.4, store_version: int | None = None) -> BM25Index:
        return cls._indexed(list(ids), Corpus.of(texts), k1, b, store_version)

    @classmethod
    def _indexed(cls, ids: list[str], corpus: Corpus, k1: float, b: float,
                 store_version: int | None) -> BM25Index:
        import bm25s

        if not ids:
            return cls([], None, k1, b, store_version, corpus)
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index((corpus.rows(), {t: n for n, t in enumerate(corpus.vocab)}),
                        show_progress=False)
        return cls(ids, retriever, k1, b, store_version, corpus)

    def updated(self, ids: Sequence[str], texts: Callable[[list[str]], dict[str, str]],
                store_version: int | None) -> BM25Index:
        """The index of the chunks ``ids``: rows of this index that are among them are kept
        (a chunk id names its text), the others dropped, and ``texts`` is asked for the
        texts of the ids this index lacks, which alone are tokenised. Needs the
        :attr:`corpus`."""
        if self.corpus is None:
            raise KnowledgeBaseError("this lexical index has no saved corpus to update")
        wanted = set(ids)
        keep = np.fromiter((i in wanted for i in self.ids), dtype=bool, count=len(self.ids))
        present = set(self.ids)
        new = [i for i in dict.fromkeys(ids) if i not in present]
        found = texts(new) if new else {}
        missing = [i for i in new if i not in found]
        if missing:
            raise KnowledgeBaseError(f"{len(missing)} chunks to index are not in the store "
                                     f"(first: {missing[0]}); repair with: ragtune kb verify "
                                     "--repair")
        corpus = self.corpus.updated(keep, [found[i] for i in new])
        kept = [i for i, k in zip(self.ids, keep, strict=True) if k]
        return self._indexed(kept + new, corpus, self.k1, self.b, store_version)

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
            if self.corpus is not None:
                self.corpus.save(tmp)
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
                   meta.get("store_version"), Corpus.load(folder, len(ids)))
