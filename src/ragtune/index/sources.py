"""The record of sources: which files are in a knowledge base, their hashes and chunk ids.

Kept in ``sources.json`` beside the store and written atomically; it is what makes
re-ingest skip unchanged files and what ``kb verify`` reconciles with the store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import KnowledgeBaseError
from ragtune.index.manifest import write_json_atomic

SOURCES = "sources.json"


@dataclass(frozen=True)
class SourceRecord:
    source: str
    sha256: str
    size: int
    chunk_ids: tuple[str, ...]
    pages: int | None
    documents: int
    ingested_at: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chunk_ids"] = list(self.chunk_ids)
        return data


def load_sources(folder: Path) -> dict[str, SourceRecord]:
    path = folder / SOURCES
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {s: SourceRecord(**{**r, "chunk_ids": tuple(r["chunk_ids"])})
                for s, r in data["sources"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise KnowledgeBaseError(f"{path} is corrupt ({exc!r}); rebuild the record with: "
                                 "ragtune kb verify --repair") from None


def save_sources(folder: Path, records: dict[str, SourceRecord]) -> None:
    write_json_atomic(folder / SOURCES, {
        "format_version": 1,
        "sources": {s: r.to_dict() for s, r in sorted(records.items())},
    })
