"""Which vector store a knowledge base uses, and opening it.

The store is chosen when the knowledge base is created and recorded in its manifest:
``lancedb`` (embedded, the default) or ``qdrant`` (a server by URL, or qdrant-client's
local mode in a folder of the knowledge base).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.index.lancedb_store import TABLE, LanceDBStore
from ragtune.index.qdrant_store import QdrantStore

BACKENDS = ("lancedb", "qdrant")
Store = LanceDBStore | QdrantStore


@dataclass(frozen=True)
class StoreSpec:
    backend: str = "lancedb"
    url: str | None = None  # qdrant server, e.g. http://qdrant:6333
    collection: str | None = None  # qdrant collection (default: from the folder's name)
    table: str | None = None  # lancedb table (default: chunks; another after a re-embed)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> StoreSpec:
        spec = cls(**(data or {}))
        if spec.backend not in BACKENDS:
            raise ConfigError(f"unknown store {spec.backend!r}; valid choices: "
                              f"{', '.join(BACKENDS)}")
        return spec


def default_collection(folder: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(os.path.abspath(folder)).name).strip("-")
    digest = hashlib.sha1(os.path.abspath(folder).encode()).hexdigest()[:8]
    return f"ragtune-{name or 'kb'}-{digest}"


def open_store(folder: Path, spec: StoreSpec, dimension: int, *, suffix: str = "",
               collection: str | None = None, client: Any = None) -> Store:
    """The store of the knowledge base in ``folder`` (``suffix`` names a sibling store;
    ``client``: an open qdrant client to share, as qdrant's local mode allows one)."""
    if spec.backend == "lancedb":
        return LanceDBStore(folder / f"store{suffix}", dimension, table=spec.table or TABLE)
    name = collection or spec.collection or default_collection(folder)
    return QdrantStore(
        dimension, collection=name, counter=folder / "qdrant-version.json", url=spec.url,
        client=client,
        path=None if spec.url else folder / "qdrant", api_key=os.environ.get("QDRANT_API_KEY"))
