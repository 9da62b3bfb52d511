"""The record of sources: which files are in a knowledge base, their hashes and chunk ids.

Kept in ``sources.json`` beside the store and written atomically, together with the store
version it describes (``store_version``). Renaming the new file into place is the commit
point of every write: a store version newer than the recorded one holds uncommitted work,
which readers do not see and the next writer rolls back. It is also what makes re-ingest
skip unchanged files and what ``kb verify`` reconciles with the store.

``history.jsonl`` keeps one line per committed change (ingest, remove, reembed, repair).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import KnowledgeBaseError
from ragtune.index.manifest import write_json_atomic

SOURCES = "sources.json"
HISTORY = "history.jsonl"


@dataclass(frozen=True)
class SourceRecord:
    source: str
    sha256: str
    size: int
    chunk_ids: tuple[str, ...]
    pages: int | None
    documents: int
    ingested_at: float
    # how people see the source: relative to the folder it was ingested from (or to the
    # knowledge base, for uploads), never an absolute path; None in records from before
    display: str | None = None
    collection: str | None = None  # the server collection that uploaded it; None: not uploaded

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chunk_ids"] = list(self.chunk_ids)
        for key in ("display", "collection"):  # unset: left out, so that such a record
            if data[key] is None:  # still reads in versions without these fields
                del data[key]
        return data


@dataclass
class SourceLog:
    """All source records and the store version they were committed with."""

    sources: dict[str, SourceRecord] = field(default_factory=dict)
    store_version: int | None = None

    def chunk_ids(self) -> list[str]:
        return [i for r in self.sources.values() for i in r.chunk_ids]


def load_sources(folder: Path) -> SourceLog:
    path = folder / SOURCES
    if not path.exists():
        return SourceLog()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sources = {s: SourceRecord(**{**r, "chunk_ids": tuple(r["chunk_ids"])})
                   for s, r in data["sources"].items()}
        version = data.get("store_version")
        return SourceLog(sources, int(version) if version is not None else None)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KnowledgeBaseError(f"{path} is corrupt ({exc!r}); rebuild the record with: "
                                 f"ragtune kb verify --kb {folder} --repair") from None


def save_sources(folder: Path, log: SourceLog) -> None:
    """Commit: write the record with ``log.store_version`` atomically."""
    write_json_atomic(folder / SOURCES, {
        "format_version": 1,
        "store_version": log.store_version,
        "sources": {s: r.to_dict() for s, r in sorted(log.sources.items())},
    })


def append_history(folder: Path, operation: str, version: int | None, **details: Any) -> None:
    entry = {"version": version, "time": time.time(), "operation": operation, **details}
    with (folder / HISTORY).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_history(folder: Path) -> list[dict[str, Any]]:
    path = folder / HISTORY
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:  # a line cut short by a crash
            continue
    return entries
