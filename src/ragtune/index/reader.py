"""A read-only, in-memory view of one committed version of a knowledge base's store.

Searching a store through its query engine costs milliseconds per call (LanceDB's flat
search took about 85 ms at 100,000 chunks); a view answers in well under one:

* chunk metadata as one Arrow table and an id → row map, so fetching hits is a ``take``;
* dense search by exact inner product (numpy) below ``ann_min_rows`` rows, and above it by
  an HNSW graph (usearch, half-precision vectors) built by the writer for that version and
  memory-mapped here. The graph is kept current incrementally: each write removes the
  deleted chunks from the previous version's graph and adds the new ones, reading only
  their vectors (:func:`update_ann`).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.documents.boxes import boxes_from_json, boxes_to_json
from ragtune.index.bm25 import top_k
from ragtune.types import Chunk

logger = logging.getLogger(__name__)

_META = ("id", "source", "text", "context", "start", "end", "page", "heading", "line", "title",
         "record", "kind", "boxes")
ANN_DIR = "ann"
# HNSW parameters (Malkov & Yashunin 2018): graph degree, construction and search beams
_CONNECTIVITY = 16
_EXPANSION_ADD = 128
_EXPANSION_SEARCH = 256
_SERIAL_SEED = 4096


def chunk_key(chunk_id: str) -> int:
    """The 64-bit key of a chunk in the HNSW graph (stable across versions)."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "little")


def _ann_path(folder: Path, version: int) -> Path:
    return folder / ANN_DIR / f"hnsw-v{version}.usearch"


def _new_graph(dimension: int) -> Any:
    from usearch.index import Index

    return Index(ndim=dimension, metric="cos", dtype="f16", connectivity=_CONNECTIVITY,
                 expansion_add=_EXPANSION_ADD)


def _add(graph: Any, keys: np.ndarray, vectors: np.ndarray) -> None:
    """Insert into the graph: one thread while it is small, all cores after.

    Concurrent insertions into a graph of a few hundred nodes can leave a node that no
    search reaches (measured: 1 to 5 of 120 unreachable with 2 threads, none with one),
    so the first ``_SERIAL_SEED`` nodes go in one at a time.
    """
    serial = max(0, min(len(keys), _SERIAL_SEED - len(graph)))
    if serial:
        graph.add(keys[:serial], vectors[:serial], threads=1)
    if serial < len(keys):
        graph.add(keys[serial:], vectors[serial:], threads=0)


def _sums(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float64 sum and Gram matrix ``sum(v v')`` of ``vectors`` ``(n, d)`` (float32
    block products)."""
    total = np.zeros(vectors.shape[1])
    gram = np.zeros((vectors.shape[1], vectors.shape[1]))
    for start in range(0, len(vectors), 8192):
        block = np.asarray(vectors[start:start + 8192], dtype=np.float32)
        total += block.sum(0, dtype=np.float64)
        gram += block.T @ block
    return total, gram


def vector_moments(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean vector and covariance matrix of ``vectors`` ``(n, d)``."""
    total, gram = _sums(vectors)
    return _moments(total, gram, len(vectors))


def _moments(total: np.ndarray, gram: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = total / max(n, 1)
    return mean, gram / max(n, 1) - np.outer(mean, mean)


def _moments_path(folder: Path, version: int) -> Path:
    return folder / ANN_DIR / f"moments-v{version}.npz"


def _version_of(path: Path) -> int:
    return int(path.stem.split("-v")[1])


def _load_moments(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path) as saved:
            return saved["mean"], saved["covariance"]
    except (OSError, KeyError, ValueError):
        return None  # a graph from before moments were saved


def update_ann(folder: Path, store: Any, version: int, min_rows: int,
               ids: Sequence[str] | None = None) -> Path | None:
    """Write the HNSW graph and vector moments for ``version`` when it holds ``min_rows``
    chunks or more; older graphs are removed.

    With ``ids`` (every chunk id the version's record holds) the newest older graph and its
    moments are brought up to date: the chunks no longer recorded are removed from both (the
    graph's half-precision copy of a vector is what leaves the moments' sums) and only the
    vectors of new chunks are read from the store, by id. Without them, or without an older
    graph, both are built from every vector of the store.
    """
    ann = folder / ANN_DIR
    if (len(ids) if ids is not None else store.count()) < min_rows:
        shutil.rmtree(ann, ignore_errors=True)
        return None
    target = _ann_path(folder, version)
    if target.exists():
        return target
    from usearch.index import Index

    previous = sorted(ann.glob("hnsw-v*.usearch"), key=_version_of) if ann.exists() else []
    updated = None
    if previous and ids is not None and hasattr(store, "vectors"):
        updated = _updated(Index.restore(str(previous[-1])), ids, store,
                           _load_moments(_moments_path(folder, _version_of(previous[-1]))))
    if updated is None:
        all_ids, vectors = store.ids_and_vectors()
        graph = _new_graph(store.dimension)
        _add(graph, np.fromiter((chunk_key(i) for i in all_ids), dtype=np.uint64,
                                count=len(all_ids)), vectors)
        mean, covariance = vector_moments(vectors)
    else:
        graph, (mean, covariance) = updated
    ann.mkdir(parents=True, exist_ok=True)
    # the collection's score moments for zscore fusion, so a view need not read every vector
    moments = _moments_path(folder, version)
    with open(moments.with_suffix(".tmp"), "wb") as out:
        np.savez(out, mean=mean, covariance=covariance)
    moments.with_suffix(".tmp").replace(moments)
    tmp = target.with_suffix(".tmp")
    graph.save(str(tmp))
    tmp.replace(target)
    for old in previous:
        old.unlink(missing_ok=True)
    for old in ann.glob("moments-v*.npz"):
        if old != moments:
            old.unlink(missing_ok=True)
    logger.info("HNSW graph for version %d: %d vectors", version, len(graph))
    return target


def _updated(graph: Any, ids: Sequence[str], store: Any,
             moments: tuple[np.ndarray, np.ndarray] | None,
             ) -> tuple[Any, tuple[np.ndarray, np.ndarray]] | None:
    """``graph`` and its ``moments`` with the chunks not in ``ids`` removed and the new
    ones added; None when that cannot be done from them (no moments saved, a recorded
    chunk the store lacks, vectors of another dimension)."""
    if moments is None or graph.ndim != store.dimension:
        return None
    keys = np.fromiter((chunk_key(i) for i in ids), dtype=np.uint64, count=len(ids))
    known = np.asarray(graph.keys, dtype=np.uint64)
    new = ~np.isin(keys, known)
    added = [i for i, is_new in zip(ids, new, strict=True) if is_new]
    found = store.vectors(added) if added else {}
    if len(found) != len(added):
        return None
    mean, covariance = moments
    n = len(graph)
    total, gram = mean * n, (covariance + np.outer(mean, mean)) * n
    gone = np.setdiff1d(known, keys)
    if len(gone):
        old_total, old_gram = _sums(np.asarray(graph.get(gone), dtype=np.float32)
                                    .reshape(len(gone), -1))
        total, gram = total - old_total, gram - old_gram
        graph.remove(gone)
    if added:
        vectors = np.stack([found[i] for i in added])
        _add(graph, keys[new], vectors)
        new_total, new_gram = _sums(vectors)
        total, gram = total + new_total, gram + new_gram
    return graph, _moments(total, gram, len(graph))


class ReadView:
    """Search and fetch over one store version, from memory.

    Example:
        >>> view = ReadView.load(kb.store, kb.path, kb.version)  # doctest: +SKIP
        >>> view.search(vector, 10)  # [(chunk id, cosine), ...]  # doctest: +SKIP
    """

    def __init__(self, meta: Any, vectors: np.ndarray | None, graph: Any = None,
                 moments: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self._meta = meta.combine_chunks()
        self.ids: list[str] = self._meta.column("id").to_pylist()
        self._row = {i: n for n, i in enumerate(self.ids)}
        self._vectors = vectors
        self._graph = graph
        self._keys = (np.fromiter((chunk_key(i) for i in self.ids), dtype=np.uint64,
                                  count=len(self.ids)) if graph is not None else None)
        self._key_row = ({int(k): n for n, k in enumerate(self._keys)}
                         if self._keys is not None else {})
        self._siblings: dict[tuple[Any, ...], list[int]] | None = None
        self._moments = moments  # mean vector and covariance, see :meth:`moments`

    @classmethod
    def load(cls, store: Any, folder: Path, version: int, ann_min_rows: int = 20_000,
             ) -> ReadView:
        meta = store.rows([*_META, "ingested_at"]) if hasattr(store, "rows") else None
        graph = None
        moments: tuple[np.ndarray, np.ndarray] | None = None
        path = _ann_path(folder, version)
        if store.count() >= ann_min_rows and path.exists():
            from usearch.index import Index

            graph = Index.restore(str(path), view=True)
            graph.expansion_search = _EXPANSION_SEARCH  # type: ignore[misc,union-attr]
            moments = _load_moments(_moments_path(folder, version))  # None: computed on use
        if meta is None or graph is None:
            ids, vectors = store.ids_and_vectors()
        else:
            vectors = None
        if meta is None:  # stores without Arrow rows (qdrant): build the table from chunks
            import pyarrow as pa

            chunks = store.get(ids)
            meta = pa.table({**{f: [getattr(chunks[i], f) for i in ids] for f in _META
                                if f != "boxes"},
                             "boxes": [boxes_to_json(chunks[i].boxes) for i in ids],
                             "ingested_at": pa.array([None] * len(ids), type=pa.float64())})
        elif vectors is not None:
            # order the vectors like the metadata rows
            order = {i: n for n, i in enumerate(ids)}
            vectors = vectors[[order[i] for i in meta.column("id").to_pylist()]]
        return cls(meta, vectors, graph, moments)

    @property
    def approximate(self) -> bool:
        return self._graph is not None

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, vector: np.ndarray, k: int, mask: np.ndarray | None = None,
               ) -> list[tuple[str, float]]:
        """Ids and cosine similarities of the ``k`` nearest chunks, best first.

        ``mask`` (one boolean per row) restricts the search; it is exact then.
        """
        if k <= 0 or not self.ids:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self._graph is not None and mask is None:
            found = self._graph.search(query, min(k, len(self.ids)))
            return [(self.ids[self._key_row[int(key)]], 1.0 - float(d))
                    for key, d in zip(found.keys, found.distances, strict=True)
                    if int(key) in self._key_row]
        vectors = self._vectors if self._vectors is not None else self._graph_vectors()
        scores = vectors @ query
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        return [(self.ids[int(i)], float(scores[i])) for i in top_k(scores, k)
                if np.isfinite(scores[i])]

    def _read_graph_vectors(self) -> np.ndarray:
        return np.asarray(self._graph.get(self._keys), dtype=np.float32)

    def _graph_vectors(self) -> np.ndarray:
        self._vectors = self._read_graph_vectors()
        return self._vectors

    def get(self, ids: Sequence[str]) -> dict[str, Chunk]:
        rows = [self._row[i] for i in dict.fromkeys(ids) if i in self._row]
        out: dict[str, Chunk] = {}
        if not rows:
            return out
        for record in self._meta.take(rows).to_pylist():
            fields = {k: record[k] for k in _META if k not in ("context", "kind", "boxes")}
            out[record["id"]] = Chunk(**fields, context=record["context"] or "",
                                      kind=record.get("kind") or "text",
                                      boxes=boxes_from_json(record.get("boxes")))
        return out

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``ids``, ``(len(ids), dimension)``."""
        if self._vectors is None and self._keys is not None:
            keys = self._keys[[self._row[i] for i in ids]]
            return np.asarray(self._graph.get(keys), dtype=np.float32).reshape(len(ids), -1)
        vectors = self._vectors if self._vectors is not None else self._graph_vectors()
        return vectors[[self._row[i] for i in ids]]

    def moments(self, vector: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation of the cosine of ``vector`` with every chunk.

        Exact without scoring every chunk: ``mean = mu . q`` and ``var = q' C q`` from the
        collection's mean vector ``mu`` and covariance ``C``, saved with the HNSW graph
        (or computed once per view where there is none).
        """
        if not self.ids:
            return 0.0, 0.0
        if self._moments is None:
            # an HNSW view without saved moments reads its vectors once, without keeping them
            self._moments = vector_moments(self._vectors if self._vectors is not None
                                           else self._read_graph_vectors())
        mean, covariance = self._moments
        query = np.asarray(vector, dtype=np.float64).reshape(-1)
        variance = float(query @ covariance @ query)
        return float(mean @ query), float(np.sqrt(max(variance, 0.0)))

    def neighbours(self, chunk: Chunk, n: int) -> list[Chunk]:
        """Up to ``n`` chunks before and after ``chunk`` in its document, on the same page,
        in document order (``chunk`` included)."""
        if self._siblings is None:
            groups: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
            starts = self._meta.column("start").to_pylist()
            for row, key in enumerate(zip(self._meta.column("source").to_pylist(),
                                          self._meta.column("record").to_pylist(),
                                          self._meta.column("page").to_pylist(), strict=True)):
                groups.setdefault(key, []).append((starts[row], row))
            self._siblings = {k: [r for _, r in sorted(v)] for k, v in groups.items()}
        rows = self._siblings.get((chunk.source, chunk.record, chunk.page), [])
        if chunk.id not in self._row or not rows:
            return [chunk]
        at = rows.index(self._row[chunk.id])
        picked = rows[max(0, at - n): at + n + 1]
        found = self.get([self.ids[r] for r in picked])
        return [found[self.ids[r]] for r in picked]

    def column(self, name: str) -> Any:
        """A metadata column as an Arrow array, row-aligned with :attr:`ids` (for filters)."""
        return self._meta.column(name)
