"""A Qdrant store for knowledge bases that outgrow one machine (same VectorStore protocol).

One collection per knowledge base; every point carries the chunk's provenance as payload
(indexed for ``source`` and ``page``, so filters run server-side). Point ids are UUIDs
derived from chunk ids. Works against a server (``url``) or qdrant-client's embedded local
mode (``path``), which the tests use.

Qdrant keeps no table versions, so this store counts its own writes (``version``) in a small
file beside the knowledge base; an interrupted write is reconciled by the next writer rather
than rolled back (see :meth:`ragtune.index.core.Index.reconcile`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.documents.boxes import boxes_from_json
from ragtune.errors import ConfigError, KnowledgeBaseError
from ragtune.index.manifest import write_json_atomic
from ragtune.types import Chunk

_FIELDS = ("id", "source", "text", "context", "start", "end", "page", "heading", "line", "title",
           "record", "kind", "boxes")


def point_id(chunk_id: str) -> str:
    """The UUID under which a chunk is stored (Qdrant ids are integers or UUIDs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ragtune:{chunk_id}"))


def _to_chunk(payload: dict[str, Any]) -> Chunk:
    fields: dict[str, Any] = {k: payload.get(k) for k in _FIELDS
                              if k not in ("context", "kind", "boxes")}
    return Chunk(**fields, context=payload.get("context") or "",
                 kind=payload.get("kind") or "text", boxes=boxes_from_json(payload.get("boxes")))


class QdrantStore:
    """Chunks and vectors in a Qdrant collection.

    Example:
        >>> store = QdrantStore(384, url="http://qdrant:6333", collection="handbook",
        ...                     counter=Path("kb/qdrant-version.json"))  # doctest: +SKIP
    """

    def __init__(self, dimension: int, *, collection: str, counter: Path, url: str | None = None,
                 path: str | Path | None = None, api_key: str | None = None,
                 client: Any = None) -> None:
        try:
            from qdrant_client import QdrantClient, models
        except ImportError:
            raise ConfigError("the qdrant store needs qdrant-client: pip install "
                              "'ragtune[qdrant]' (or pip install qdrant-client)") from None
        self._models = models
        if client is None:
            if not url and path is None:
                raise ConfigError("the qdrant store needs a server URL (--qdrant-url) or a "
                                  "local path")
            client = (QdrantClient(url=url, api_key=api_key) if url
                      else QdrantClient(path=str(path)))
        self._client = client
        self.dimension = dimension
        self.collection = collection
        self._counter = counter
        if not client.collection_exists(collection):
            client.create_collection(collection, vectors_config=models.VectorParams(
                size=dimension, distance=models.Distance.COSINE))
            if url:  # local mode has no payload indexes (and warns about them)
                for field, schema in (("source", models.PayloadSchemaType.KEYWORD),
                                      ("page", models.PayloadSchemaType.INTEGER),
                                      ("id", models.PayloadSchemaType.KEYWORD)):
                    client.create_payload_index(collection, field, schema)
        else:
            size = client.get_collection(collection).config.params.vectors.size
            if size != dimension:
                raise KnowledgeBaseError(f"qdrant collection {collection!r} holds {size}-d "
                                         f"vectors, expected {dimension}-d")

    # --- the VectorStore protocol -------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dimension):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self.dimension}), "
                             f"got {vectors.shape}")
        now = time.time()
        points = [self._models.PointStruct(
            id=point_id(c.id), vector=v.tolist(),
            payload={**{f: getattr(c, f) for f in _FIELDS}, "boxes": [list(b) for b in c.boxes],
                     "ingested_at": now})
            for c, v in zip(chunks, vectors, strict=True)]
        for i in range(0, len(points), 256):
            self._client.upsert(self.collection, points=points[i:i + 256], wait=True)
        self._bump()

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), 1000):
            self._client.delete(self.collection, points_selector=self._models.PointIdsList(
                points=[point_id(x) for x in ids[i:i + 1000]]), wait=True)
        if ids:
            self._bump()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        result = self._client.query_points(
            self.collection, query=np.asarray(vector, dtype=np.float32).reshape(-1).tolist(),
            limit=k, with_payload=["id"])
        return [(p.payload["id"], float(p.score)) for p in result.points]

    def get(self, ids: Sequence[str]) -> dict[str, Chunk]:
        found: dict[str, Chunk] = {}
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), 1000):
            points = self._client.retrieve(self.collection, ids=[point_id(x) for x in
                                                                 ids[i:i + 1000]],
                                           with_payload=True)
            found.update((p.payload["id"], _to_chunk(p.payload)) for p in points)
        return found

    def scan(self) -> Iterator[Chunk]:
        for payload, _ in self._scroll(vectors=False):
            yield _to_chunk(payload)

    # --- what the knowledge base uses besides the protocol --------------------------------------

    def _scroll(self, vectors: bool) -> Iterator[tuple[dict[str, Any], Any]]:
        offset = None
        while True:
            points, offset = self._client.scroll(self.collection, limit=1000, offset=offset,
                                                 with_payload=True, with_vectors=vectors)
            for p in points:
                yield p.payload, p.vector
            if offset is None:
                return

    def count(self) -> int:
        return int(self._client.count(self.collection, exact=True).count)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by chunk id."""
        out: dict[str, np.ndarray] = {}
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), 1000):
            points = self._client.retrieve(self.collection, ids=[point_id(x) for x in
                                                                 ids[i:i + 1000]],
                                           with_payload=["id"], with_vectors=True)
            out.update((p.payload["id"], np.asarray(p.vector, dtype=np.float32))
                       for p in points if p.vector is not None)
        return out

    def ids_and_vectors(self) -> tuple[list[str], np.ndarray]:
        ids, vectors = [], []
        for payload, vector in self._scroll(vectors=True):
            ids.append(payload["id"])
            vectors.append(vector if vector is not None else [np.nan] * self.dimension)
        return ids, np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dimension)

    @property
    def version(self) -> int:
        try:
            return int(json.loads(self._counter.read_text())["version"])
        except (OSError, ValueError, KeyError):
            return 0

    def _bump(self) -> None:
        write_json_atomic(self._counter, {"version": self.version + 1,
                                          "collection": self.collection})

    def versions(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        self._client.close()
