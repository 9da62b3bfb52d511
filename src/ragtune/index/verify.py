"""Reconcile the record of sources, the vector store and the lexical index.

A knowledge base is consistent when the three agree: the same chunk ids in each, every
id once, every vector present, finite and of the manifest's dimension, and no write past
the committed store version. :func:`check` lists every disagreement; repairs are done by
:meth:`ragtune.knowledge_base.KnowledgeBase.verify`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragtune.index.bm25 import BM25Index
from ragtune.index.sources import SourceLog


@dataclass(frozen=True)
class Problem:
    kind: str  # uncommitted | duplicate | orphan | missing | bad-vector | lexical | record
    detail: str
    ids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "count": len(self.ids),
                "ids": list(self.ids[:20]), "sources": list(self.sources)}


@dataclass
class VerifyReport:
    sources: int = 0
    chunks_recorded: int = 0
    rows_in_store: int = 0
    lexical_entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # true and harmless: not problems

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "sources": self.sources, "chunks_recorded": self.chunks_recorded,
                "rows_in_store": self.rows_in_store, "lexical_entries": self.lexical_entries,
                "problems": [p.to_dict() for p in self.problems], "repaired": self.repaired,
                "notes": self.notes}


def check(log: SourceLog, store_ids: list[str], vectors: np.ndarray | None, dimension: int,
          lexical: BM25Index | None, lexical_version: int | None, store_version: int,
          ) -> VerifyReport:
    """All disagreements between the record, the store rows and the lexical index.

    ``store_ids`` and ``vectors`` (shape ``(len(store_ids), dimension)``) are the rows of
    the store at its newest version.
    """
    report = VerifyReport(sources=len(log.sources), rows_in_store=len(store_ids))
    problems = report.problems
    recorded = log.chunk_ids()
    report.chunks_recorded = len(recorded)
    owners: dict[str, list[str]] = {}
    for source, record in log.sources.items():
        for i in record.chunk_ids:
            owners.setdefault(i, []).append(source)

    if log.store_version is not None and store_version != log.store_version:
        problems.append(Problem(
            "uncommitted", f"the store is at version {store_version} but the record was "
            f"committed at version {log.store_version} (an interrupted write)"))
    shared = sorted(i for i, s in owners.items() if len(s) > 1)
    if shared:
        problems.append(Problem("record", "chunk ids recorded under more than one source",
                                tuple(shared)))
    counts = Counter(store_ids)
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        problems.append(Problem("duplicate", "chunk ids stored more than once",
                                tuple(duplicates)))
    orphans = sorted(set(counts) - set(owners))
    if orphans:
        problems.append(Problem("orphan", "rows in the store that no source records",
                                tuple(orphans)))
    missing = sorted(set(owners) - set(counts))
    if missing:
        problems.append(Problem(
            "missing", "recorded chunks absent from the store", tuple(missing),
            tuple(sorted({s for i in missing for s in owners[i]}))))
    if vectors is not None and len(store_ids):
        bad_shape = vectors.ndim != 2 or vectors.shape[1] != dimension
        finite = np.isfinite(vectors).all(axis=1) if not bad_shape else np.zeros(0, bool)
        norms = np.linalg.norm(np.nan_to_num(vectors), axis=1) if not bad_shape else finite
        bad = [store_ids[i] for i in range(len(store_ids))
               if bad_shape or not finite[i] or norms[i] < 1e-6]
        if bad:
            problems.append(Problem(
                "bad-vector", f"vectors missing, non-finite, zero or not {dimension}-d",
                tuple(sorted(set(bad))),
                tuple(sorted({s for i in bad for s in owners.get(i, [])}))))
    lexical_ids = list(lexical.ids) if lexical is not None else []
    report.lexical_entries = len(lexical_ids)
    if lexical is None:
        problems.append(Problem("lexical", "the lexical index is missing"))
    elif set(lexical_ids) != set(counts) or len(lexical_ids) != len(set(lexical_ids)):
        diff = sorted(set(lexical_ids) ^ set(counts))
        problems.append(Problem("lexical", "the lexical index and the store hold different "
                                "chunk ids", tuple(diff)))
    elif log.store_version is not None and lexical_version != log.store_version:
        problems.append(Problem("lexical", f"the lexical index was built at store version "
                                f"{lexical_version}, the record is at {log.store_version}"))
    return report
