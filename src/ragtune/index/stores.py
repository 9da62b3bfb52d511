"""Which vector store a knowledge base uses, and opening it.

The store is chosen when the knowledge base is created and recorded in its manifest:
``lancedb`` (embedded, the default) or ``qdrant`` (a server by URL, or qdrant-client's
local mode in a folder of the knowledge base). Stores are registered by name in the
``ragtune.stores`` entry-point group (:data:`STORES`); each entry opens one with the
arguments of :func:`open_store`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragtune.components import Registry
from ragtune.errors import UnknownComponentError
from ragtune.index.lancedb_store import TABLE, LanceDBStore
from ragtune.index.qdrant_store import QdrantStore

Store = LanceDBStore | QdrantStore
STORES: Registry[Callable[..., Store]] = Registry("stores", "store")


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
        if spec.backend not in STORES:
            raise UnknownComponentError("store", spec.backend, STORES)
        return spec


def default_collection(folder: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(os.path.abspath(folder)).name).strip("-")
    digest = hashlib.sha1(os.path.abspath(folder).encode()).hexdigest()[:8]
    return f"ragtune-{name or 'kb'}-{digest}"


def open_store(folder: Path, spec: StoreSpec, dimension: int, *, suffix: str = "",
               collection: str | None = None, client: Any = None) -> Store:
    """The store of the knowledge base in ``folder`` (``suffix`` names a sibling store;
    ``client``: an open qdrant client to share, as qdrant's local mode allows one)."""
    return STORES[spec.backend](folder, spec, dimension, suffix=suffix, collection=collection,
                                client=client)


def open_lancedb(folder: Path, spec: StoreSpec, dimension: int, *, suffix: str = "",
                 collection: str | None = None, client: Any = None) -> LanceDBStore:
    """The ``lancedb`` store: embedded, in the folder ``store`` (plus ``suffix``)."""
    return LanceDBStore(folder / f"store{suffix}", dimension, table=spec.table or TABLE)


def open_qdrant(folder: Path, spec: StoreSpec, dimension: int, *, suffix: str = "",
                collection: str | None = None, client: Any = None) -> QdrantStore:
    """The ``qdrant`` store: a server at ``spec.url``, else qdrant-client's local mode in
    the folder ``qdrant``."""
    name = collection or spec.collection or default_collection(folder)
    return QdrantStore(
        dimension, collection=name, counter=folder / "qdrant-version.json", url=spec.url,
        client=client,
        path=None if spec.url else folder / "qdrant", api_key=os.environ.get("QDRANT_API_KEY"))
