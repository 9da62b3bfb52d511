"""The index of a knowledge base: its store, lexical index, record of sources and read view,
and the one commit that moves them together.

Layout of the folder::

    manifest.json   format version, embedder name and dimension, chunking
    sources.json    the record of sources and the store version it was committed with
    history.jsonl   one line per committed change
    store/          LanceDB (chunks + vectors, versioned)
    lexical/        BM25 index (bm25s arrays, ids.json, meta.json, the tokenised corpus)
    ann/            HNSW graph of the committed version, above ``ann_min_rows`` chunks

A write (:meth:`Index.write`, under the folder's lock) puts rows into the store, then
commits: renaming ``sources.json`` into place with the store version it describes is the
commit point (:meth:`Index.checkpoint`, after each batch of a long ingest); the lexical
index and the HNSW graph for that version follow, and a history line (:meth:`Index.commit`,
at the end of the write). Readers see the last committed version of the store, so an
interrupted write is never visible; a lexical index left behind the record is brought up to
it from its tokenised corpus and the chunks added since, read by id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ragtune.errors import KnowledgeBaseError
from ragtune.index.bm25 import BM25Index
from ragtune.index.ingest import source_name
from ragtune.index.lancedb_store import LanceDBStore
from ragtune.index.lock import write_lock
from ragtune.index.manifest import MANIFEST, Manifest
from ragtune.index.reader import ReadView, update_ann
from ragtune.index.sources import (
    SourceLog,
    SourceRecord,
    append_history,
    load_sources,
    save_sources,
)
from ragtune.index.stores import Store, StoreSpec, open_store
from ragtune.types import Chunk

logger = logging.getLogger(__name__)
LEXICAL = "lexical"
_BY_ID = 2_000  # chunks to index read back by id at most; more: one pass over the store


class Index:
    """The store, lexical index, record of sources and read view of one knowledge-base
    folder; the only code that writes them.

    Example:
        >>> index = Index.open("my-kb")  # doctest: +SKIP
        >>> with index.write() as store:  # doctest: +SKIP
        ...     log = index.record()
        ...     store.delete(list(log.sources.pop("/docs/old.txt").chunk_ids))
        ...     index.commit(store, log, "remove", removed=1)
    """

    def __init__(self, path: Path, manifest: Manifest, *, ann_min_rows: int = 20_000,
                 lock_timeout_s: float = 600.0) -> None:
        self.path = path
        self.manifest = manifest
        self.ann_min_rows = ann_min_rows
        self.lock_timeout_s = lock_timeout_s
        self._store: Store | None = None
        self._shared: Store | None = None  # qdrant local mode allows one client per folder
        self._lexical: BM25Index | None = None
        self._reader: ReadView | None = None
        self._written: dict[str, str] = {}  # index text of the chunks this write stored

    @classmethod
    def open(cls, path: str | Path, *, ann_min_rows: int = 20_000,
             lock_timeout_s: float = 600.0) -> Index:
        folder = Path(path)
        return cls(folder, Manifest.load(folder), ann_min_rows=ann_min_rows,
                   lock_timeout_s=lock_timeout_s)

    @classmethod
    def create(cls, path: str | Path, manifest: Manifest, *, ann_min_rows: int = 20_000,
               lock_timeout_s: float = 600.0) -> Index:
        """A new, empty index in ``path`` (absent, or a folder with nothing in it)."""
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise KnowledgeBaseError(f"{folder} exists and is not a folder")
        if folder.is_dir() and any(p.name != ".lock" for p in folder.iterdir()):
            raise KnowledgeBaseError(
                f"{folder} is a non-empty folder without a {MANIFEST}; choose an empty or new "
                "folder for the knowledge base"
            )
        index = cls(folder, manifest, ann_min_rows=ann_min_rows, lock_timeout_s=lock_timeout_s)
        with write_lock(folder, lock_timeout_s):
            store = index.open_store()
            save_sources(folder, SourceLog(store_version=store.version))
            BM25Index.build([], [], store_version=store.version).save(folder / LEXICAL)
            manifest.save(folder)  # last: a folder with a manifest is a complete knowledge base
        return index

    def close(self) -> None:
        """Release the store's connection (qdrant's local mode allows one per folder)."""
        for store in (self._shared, self._store):
            close = getattr(store, "close", None)
            if close is not None:
                close()
        self._shared = self._store = None
        self._forget()

    def _forget(self) -> None:
        """Drop what was read of the committed version (after a commit)."""
        if self._store is not self._shared:
            self._store = None
        self._lexical = None
        self._reader = None

    # --- reading ------------------------------------------------------------------------------

    @property
    def store_spec(self) -> StoreSpec:
        return StoreSpec.from_dict(self.manifest.store)

    def open_store(self) -> Store:
        """A fresh handle on the newest store (one shared handle for qdrant's local mode)."""
        if self.store_spec.backend == "qdrant":
            if self._shared is None:
                self._shared = open_store(self.path, self.store_spec, self.manifest.dimension)
            return self._shared
        return open_store(self.path, self.store_spec, self.manifest.dimension)

    def use_store(self, store: Store) -> None:
        """Make ``store`` the handle this index reads and writes (qdrant's local mode: the
        one client a new collection was opened with)."""
        self._shared = store if self.store_spec.backend == "qdrant" else None
        self._store = None

    @property
    def store(self) -> Store:
        """The store as of the last committed version (read-only when a write is pending;
        qdrant keeps no versions, so there readers see the newest state)."""
        if self._store is None:
            store = self.open_store()
            committed = self.record().store_version
            if (isinstance(store, LanceDBStore) and committed is not None
                    and store.version != committed):
                logger.info("store %s is at version %d, reading committed version %d",
                            self.path, store.version, committed)
                store.checkout(committed)
            self._store = store
        return self._store

    @property
    def lexical(self) -> BM25Index:
        """The BM25 index of the committed version."""
        if self._lexical is None:
            log = self.record()
            index = self._saved_lexical()
            if index is None or index.store_version != log.store_version:
                # an interrupted write left it behind the record: catch up in memory
                index = self._lexical_for(self.store, log, index)
            self._lexical = index
        return self._lexical

    @property
    def reader(self) -> ReadView:
        """The committed version in memory: what searches read (see :mod:`.reader`)."""
        if self._reader is None:
            self._reader = ReadView.load(self.store, self.path, self.version, self.ann_min_rows)
        return self._reader

    @property
    def version(self) -> int:
        """The committed store version: answers report it, history lists them."""
        committed = self.record().store_version
        return committed if committed is not None else self.store.version

    def record(self) -> SourceLog:
        """The committed record of sources (a copy to change and commit)."""
        return load_sources(self.path)

    def sources(self) -> list[SourceRecord]:
        return sorted(self.record().sources.values(), key=lambda r: r.source)

    def display_names(self) -> dict[str, str]:
        """Each stored source (an absolute path, the id that sync and remove use) and the
        name to show for it (see :func:`ragtune.index.ingest.display_name`). A record from
        before display names were recorded shows its path inside the knowledge base, else
        its file name, until the next ingest of its folder records the relative path."""
        inside = source_name(self.path).rstrip("/") + "/"
        return {s: r.display or (s[len(inside):] if s.startswith(inside) else PurePosixPath(s).name)
                for s, r in self.record().sources.items()}

    # --- writing ------------------------------------------------------------------------------

    @contextmanager
    def write(self, *, undo: bool = True) -> Iterator[Store]:
        """Hold the folder's lock and give the newest store, with any uncommitted write
        undone (``undo=False``: as it is, for :meth:`writable_store` to undo later); what
        is not committed by :meth:`checkpoint` or :meth:`commit` before the block ends is
        rolled back by the next writer."""
        with write_lock(self.path, self.lock_timeout_s):
            self._written = {}
            try:
                yield self.writable_store() if undo else self.open_store()
            finally:
                self._written = {}
                self._forget()

    def writable_store(self) -> Store:
        """The newest store, with any uncommitted write undone (call under the lock).

        LanceDB rolls back to the committed version; qdrant, which keeps no versions, is
        reconciled with the record instead (see :meth:`reconcile`).
        """
        store = self.open_store()
        log = self.record()
        committed = log.store_version
        if not isinstance(store, LanceDBStore):
            if committed is not None and store.version != committed:
                self.reconcile(store, log)
            return store
        if committed is None:
            # a record from before store versions were recorded: its store is taken as
            # committed (kb verify reconciles the two if they disagree)
            log.store_version = store.version
            save_sources(self.path, log)
            return store
        if store.version != committed:
            logger.warning("rolling back an interrupted write to %s (store version %d to %d)",
                           self.path, store.version, committed)
            store.restore(committed)  # a new version with the committed content
            log.store_version = store.version
            save_sources(self.path, log)
        return store

    def reconcile(self, store: Store, log: SourceLog) -> None:
        """Undo an interrupted write on a store without versions (qdrant): delete rows no
        source records, and forget sources whose rows are incomplete so that the next ingest
        adds them again. Commits the record at the store's current version."""
        ids, _ = store.ids_and_vectors()
        present = set(ids)
        recorded = {i for r in log.sources.values() for i in r.chunk_ids}
        orphans = sorted(present - recorded)
        broken = [s for s, r in log.sources.items() if not set(r.chunk_ids) <= present]
        logger.warning("reconciling an interrupted write to %s: %d orphan rows, %d incomplete "
                       "sources", self.path, len(orphans), len(broken))
        store.delete(orphans + [i for s in broken for i in log.sources[s].chunk_ids])
        for s in broken:
            del log.sources[s]
        log.store_version = store.version
        save_sources(self.path, log)

    def checkpoint(self, store: Store, log: SourceLog, stored: Sequence[Chunk] = ()) -> None:
        """Commit ``log`` at the store's current version: the rename of ``sources.json`` is
        the commit point. ``stored`` (the chunks just written) are kept for the lexical index
        that :meth:`commit` writes, so that it need not read them back."""
        self._written.update((c.id, c.index_text) for c in stored)
        log.store_version = store.version
        save_sources(self.path, log)
        logger.info("committed %d sources at store version %s", len(log.sources),
                    log.store_version)

    def commit(self, store: Store, log: SourceLog, operation: str, *, changed: bool = True,
               stored: Sequence[Chunk] = (), **details: object) -> None:
        """Commit ``log`` (see :meth:`checkpoint`), then write the lexical index and the
        HNSW graph of that version and, when ``changed``, a history line."""
        self.checkpoint(store, log, stored)
        committed = log.store_version
        saved = self._saved_lexical()
        if saved is None or saved.store_version != committed or saved.corpus is None:
            self._lexical_for(store, log, saved).save(self.path / LEXICAL)
        if committed is not None:
            update_ann(self.path, store, committed, self.ann_min_rows, log.chunk_ids())
        if changed:
            append_history(self.path, operation, committed, **details)
        self._forget()

    def rebuild_lexical(self, store: Store) -> None:
        """Build the lexical index again from every chunk of ``store`` (a repair)."""
        self._full_lexical(store, self.record().store_version).save(self.path / LEXICAL)
        self._lexical = None

    def _saved_lexical(self) -> BM25Index | None:
        folder = self.path / LEXICAL
        try:
            return BM25Index.load(folder) if folder.exists() else None
        except KnowledgeBaseError:
            return None  # unreadable or another tokenizer: rebuilt from the store

    def _lexical_for(self, store: Store, log: SourceLog, base: BM25Index | None) -> BM25Index:
        """The lexical index of the chunks ``log`` records, from ``base`` and the chunks
        added since (from this write, else read by id from ``store``); from every chunk of
        the store when ``base`` has no tokenised corpus (an index written before it was
        kept: migrated on the first write)."""
        if base is None or base.corpus is None:
            logger.info("building the lexical index of %s from its store", self.path)
            return self._full_lexical(store, log.store_version)

        def texts(ids: list[str]) -> dict[str, str]:
            found = {i: self._written[i] for i in ids if i in self._written}
            rest = set(ids) - found.keys()
            if len(rest) > _BY_ID:  # reading by id filters the table once per 500 ids
                found.update((c.id, c.index_text) for c in store.scan() if c.id in rest)
            elif rest:
                found.update((i, c.index_text) for i, c in store.get(sorted(rest)).items())
            return found

        try:
            return base.updated(log.chunk_ids(), texts, log.store_version)
        except KnowledgeBaseError as exc:  # recorded chunks the store lacks: kb verify says so
            logger.warning("%s: %s; building the lexical index from the store", self.path, exc)
            return self._full_lexical(store, log.store_version)

    @staticmethod
    def _full_lexical(store: Store, version: int | None) -> BM25Index:
        chunks = list(store.scan())
        return BM25Index.build([c.id for c in chunks], [c.index_text for c in chunks],
                               store_version=version)
