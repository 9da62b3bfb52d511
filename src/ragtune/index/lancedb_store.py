"""The embedded default store: LanceDB on disk, one ``chunks`` table, versioned by Lance.

(A re-embedded knowledge base reads another table of the same database, ``chunks_r1``
and so on, named in its manifest: the new vectors are written beside the old ones.)

Each write (add, delete) makes a new table version; ``version`` is what answers report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.documents.boxes import boxes_from_json, boxes_to_json
from ragtune.errors import KnowledgeBaseError
from ragtune.types import Chunk

logger = logging.getLogger(__name__)

TABLE = "chunks"
_FIELDS = ("id", "source", "text", "context", "start", "end", "page", "heading", "line", "title",
           "record", "kind", "boxes")
# columns added after the first format, with the SQL value that older rows get
ADDED = {"kind": "'text'", "boxes": "''"}


def _schema(dimension: int) -> Any:
    import pyarrow as pa

    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("context", pa.string()),
        pa.field("start", pa.int64()),
        pa.field("end", pa.int64()),
        pa.field("page", pa.int32()),
        pa.field("heading", pa.string()),
        pa.field("line", pa.int32()),
        pa.field("title", pa.string()),
        pa.field("record", pa.int32()),
        pa.field("kind", pa.string()),
        pa.field("boxes", pa.string()),  # JSON, see ragtune.documents.boxes
        pa.field("ingested_at", pa.float64()),
        pa.field("vector", pa.list_(pa.float32(), dimension)),
    ])


def pa_strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, type=pa.string())


def _quote(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _to_chunk(row: dict[str, Any]) -> Chunk:
    fields: dict[str, Any] = {k: row.get(k) for k in _FIELDS
                              if k not in ("context", "kind", "boxes")}
    return Chunk(**fields, context=row.get("context") or "", kind=row.get("kind") or "text",
                 boxes=boxes_from_json(row.get("boxes")))


class LanceDBStore:
    """Chunks and vectors in a LanceDB table under ``path``.

    Example:
        >>> store = LanceDBStore(Path("kb/store"), dimension=384)  # doctest: +SKIP
        >>> store.search(vector, k=5)  # doctest: +SKIP
    """

    def __init__(self, path: Path, dimension: int, *, table: str = TABLE) -> None:
        import lancedb

        self.path = path
        self.dimension = dimension
        self.table = table
        self._db = lancedb.connect(str(path))
        try:
            self._table = self._db.open_table(table)
        except ValueError:  # not found
            self._table = self._db.create_table(table, schema=_schema(dimension), exist_ok=True)
        else:
            width = self._table.schema.field("vector").type.list_size
            if width != dimension:
                raise KnowledgeBaseError(
                    f"store {path} holds {width}-d vectors, expected {dimension}-d"
                )

    @property
    def version(self) -> int:
        return int(self._table.version)

    def tables(self) -> list[str]:
        """Every table of the database (more than one only during or after a re-embed)."""
        return sorted(str(t) for t in self._db.list_tables().tables)

    def drop_table(self, name: str) -> None:
        """Delete another table of the database (an old embedder's vectors)."""
        if name == self.table:
            raise KnowledgeBaseError(f"refusing to drop table {name!r}, which this store reads")
        self._db.drop_table(name)

    def versions(self) -> list[dict[str, Any]]:
        return list(self._table.list_versions())

    def checkout(self, version: int) -> None:
        """Read the table as it was at ``version`` (read-only until :meth:`latest`)."""
        self._table.checkout(version)

    def latest(self) -> None:
        self._table.checkout_latest()

    def restore(self, version: int) -> None:
        """Make ``version`` the newest version again (rolls back later writes)."""
        self._table.checkout_latest()
        self._table.restore(version)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self._table.schema]

    @property
    def schema(self) -> Any:
        """The table's pyarrow schema."""
        return self._table.schema

    def rows(self, columns: Sequence[str]) -> Any:
        """The given columns of every row, as a pyarrow table (``vector`` included if asked)."""
        n = self.count()
        if n == 0:
            import pyarrow as pa

            return pa.table({c: pa.array([], type=self._table.schema.field(c).type)
                             for c in columns})
        rows = self._table.search().select(self._present(columns)).limit(n).to_arrow()
        for name in columns:  # a version from before an added column: its default value
            if name not in rows.column_names and name in ADDED:
                rows = rows.append_column(name, pa_strings([ADDED[name].strip("'")] * len(rows)))
        return rows

    def ids_and_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every row's id and vector, ``(n, dimension)``; a null vector reads as NaN."""
        rows = self.rows(["id", "vector"])
        ids = rows.column("id").to_pylist()
        if not ids:
            return [], np.zeros((0, self.dimension), dtype=np.float32)
        column = rows.column("vector").combine_chunks()
        if column.null_count:
            nan = [float("nan")] * self.dimension
            return ids, np.array([v if v is not None else nan for v in column.to_pylist()],
                                 dtype=np.float32)
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        return ids, flat.reshape(len(ids), -1)

    def add_rows(self, rows: Any) -> None:
        """Append pyarrow rows already in the table's schema (used by repair and re-embed)."""
        self._table.add(rows)

    def _add_missing_columns(self) -> None:
        """Give a table written before a column existed that column (a new version)."""
        missing = {c: v for c, v in ADDED.items() if c not in self.columns}
        if missing:
            self._table.add_columns(missing)

    def _present(self, columns: Sequence[str]) -> list[str]:
        have = set(self.columns)
        return [c for c in columns if c in have]

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def count(self) -> int:
        return int(self._table.count_rows())

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        import pyarrow as pa

        if not chunks:
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dimension):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self.dimension}), "
                             f"got {vectors.shape}")
        self._add_missing_columns()
        now = time.time()
        columns: dict[str, Any] = {f: [getattr(c, f) for c in chunks] for f in _FIELDS}
        columns["boxes"] = [boxes_to_json(c.boxes) for c in chunks]
        columns["ingested_at"] = [now] * len(chunks)
        columns["vector"] = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.reshape(-1)), self.dimension)
        self._table.add(pa.table(columns, schema=_schema(self.dimension)))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), 500):  # keep each predicate a reasonable size
            self._table.delete(f"id IN ({_quote(ids[i:i + 500])})")

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        builder: Any = self._table.search(query)
        rows = builder.distance_type("cosine").limit(k).select(["id", "_distance"]).to_arrow()
        ids = rows.column("id").to_pylist()
        distances = rows.column("_distance").to_pylist()
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def get(self, ids: Sequence[str]) -> dict[str, Chunk]:
        found: dict[str, Chunk] = {}
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), 500):
            rows = (self._table.search().where(f"id IN ({_quote(ids[i:i + 500])})")
                    .select(self._present(_FIELDS)).limit(len(ids[i:i + 500])).to_arrow()
                    .to_pylist())
            found.update((r["id"], _to_chunk(r)) for r in rows)
        return found

    def scan(self) -> Iterator[Chunk]:
        n = self.count()
        if n == 0:
            return
        table = self._table.search().select(self._present(_FIELDS)).limit(n).to_arrow()
        for batch in table.to_batches():
            for row in batch.to_pylist():
                yield _to_chunk(row)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by chunk id (used to reuse embeddings of unchanged chunks)."""
        out: dict[str, np.ndarray] = {}
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            rows = (self._table.search().where(f"id IN ({_quote(part)})")
                    .select(["id", "vector"]).limit(len(part)).to_arrow().to_pylist())
            out.update((r["id"], np.asarray(r["vector"], dtype=np.float32)) for r in rows)
        return out
