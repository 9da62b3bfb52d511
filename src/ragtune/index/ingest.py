"""Ingest files into a knowledge base: find, read, chunk, embed, store, index.

Re-ingesting is a sync: unchanged files (same SHA-256) cost nothing, changed files have
their chunks replaced (chunks whose text and position did not change keep their stored
vectors), and files gone from an ingested folder are removed unless ``prune=False``.
Work is committed in batches: store first, then the record of sources, so that an
interrupted run leaves the last committed state searchable (the knowledge base's
:class:`~ragtune.index.core.Index` commits each batch).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np

from ragtune.documents.chunking import chunk_document
from ragtune.documents.loaders import LOADERS, load
from ragtune.documents.streaming import digest, stream_chunks, streams
from ragtune.documents.text import MAX_FILE_BYTES, read_bytes
from ragtune.errors import DocumentError
from ragtune.index.protocol import VectorStore
from ragtune.index.sources import SourceLog, SourceRecord, save_sources
from ragtune.models.protocol import Embedder
from ragtune.types import Chunk

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What an ingest did. Exit status: 0 all good, 2 some files failed, 1 nothing done."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.failed:
            done = self.added or self.updated or self.unchanged or self.removed
            return 2 if done else 1
        return 0

    def to_dict(self) -> dict[str, object]:
        return {
            "added": len(self.added), "updated": len(self.updated),
            "unchanged": len(self.unchanged), "removed": len(self.removed),
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "chunks_embedded": self.chunks_embedded, "chunks_reused": self.chunks_reused,
            "chunks_total": self.chunks_total, "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, "
                f"{len(self.failed)} failed; {self.chunks_embedded} chunks embedded, "
                f"{self.chunks_reused} reused, {self.chunks_total} in the knowledge base "
                f"({self.seconds:.1f} s)")


def source_name(path: Path) -> str:
    """How a file is recorded: its absolute path, POSIX style."""
    return Path(os.path.abspath(path)).as_posix()


def display_name(path: Path, folders: Sequence[Path], kb: Path) -> str:
    """How a file is shown in citations and hits: relative to the knowledge base when it
    lies inside it (``uploads/alice/notes.md``), else relative to the parent of the
    outermost ingested folder that holds it (``docs/guide/install.md`` for ``ingest docs``:
    the folder's own name keeps two ingested folders apart), else its file name. Never an
    absolute path: a server must not show where its files live."""
    source = source_name(path)
    outermost = sorted(folders, key=lambda f: len(source_name(f)))
    for root, keep_name in [(kb, False), *((f, True) for f in outermost)]:
        base = source_name(root).rstrip("/") + "/"
        if source.startswith(base):
            name = PurePosixPath(base).name if keep_name else ""
            return f"{name}/{source[len(base):]}" if name else source[len(base):]
    return PurePosixPath(source).name


def _is_knowledge_base(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "manifest.json")) and os.path.isdir(
        os.path.join(folder, "store"))


def _broken_link(path: Path) -> str:
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links: skipped"
    return "broken symbolic link"


def discover(paths: Iterable[str | Path], exclude: Path | None = None,
             ) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """Files to ingest, the folders they were found in, and paths that cannot be ingested.

    Folders are walked recursively without following symbolic links (so link loops end),
    skipping hidden entries, unsupported suffixes, ``exclude`` and any knowledge-base
    folder (a knowledge base kept inside the folder it indexes must not index itself).
    A file named explicitly is always tried, so an unsupported type is reported rather
    than silently ignored.
    """
    skip = os.path.abspath(exclude) if exclude is not None else None
    files: list[Path] = []
    folders: list[Path] = []
    problems: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            folders.append(path)
            inside = os.path.realpath(path)
            for root, dirs, names in os.walk(path, followlinks=False):
                for d in sorted(dirs):
                    if os.path.islink(os.path.join(root, d)) and not d.startswith("."):
                        problems.append((os.path.join(root, d), "symbolic link to a folder: "
                                         "not followed (name the folder itself to ingest it)"))
                dirs[:] = sorted(
                    d for d in dirs if not d.startswith(".")
                    and not os.path.islink(os.path.join(root, d))
                    and os.path.abspath(os.path.join(root, d)) != skip
                    and not _is_knowledge_base(os.path.join(root, d)))
                for name in sorted(names):
                    candidate = Path(root) / name
                    if name.startswith(".") or candidate.suffix.lower() not in LOADERS:
                        continue
                    if candidate.is_symlink():
                        target = os.path.realpath(candidate)
                        if not candidate.exists():
                            problems.append((str(candidate), _broken_link(candidate)))
                            continue
                        if os.path.commonpath([inside, target]) != inside:
                            problems.append((str(candidate), "symbolic link to a file outside "
                                             "the folder: skipped (name the file itself to "
                                             "ingest it)"))
                            continue
                    files.append(candidate)
        elif path.exists():
            files.append(path)
        elif path.is_symlink():
            problems.append((str(path), "broken symbolic link"))
        else:
            problems.append((str(path), "no such file or folder"))
    unique = list(dict.fromkeys(files))
    return unique, folders, problems


@dataclass
class _Pending:
    source: str
    sha256: str
    size: int
    chunks: list[Chunk]
    pages: int | None
    documents: int
    old_ids: tuple[str, ...]
    is_new: bool
    stored: tuple[str, ...] = ()  # a streamed file's chunks, already embedded and stored

    @property
    def ids(self) -> tuple[str, ...]:
        """The file's chunk ids in order, each once."""
        return tuple(dict.fromkeys([*self.stored, *(c.id for c in self.chunks)]))


class Ingestor:
    """Runs one ingest against a store; the knowledge base wires it up and holds the lock."""

    def __init__(self, folder: Path, store: VectorStore, embedder: Callable[[], Embedder],
                 log: SourceLog, *, max_tokens: int, overlap: int, batch_chunks: int = 256,
                 max_file_bytes: int = MAX_FILE_BYTES,
                 checkpoint: Callable[[SourceLog, Sequence[Chunk]], None] | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 collection: str | None = None) -> None:
        self.folder = folder
        self.collection = collection  # recorded as the owner of what this run ingests
        self.store = store
        self._embedder_factory = embedder
        self._embedder: Embedder | None = None
        self.log = log
        self.records = log.sources
        self.max_file_bytes = max_file_bytes
        self._checkpoint = checkpoint  # commits a batch (the index's); else only the record
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.batch_chunks = batch_chunks
        self.progress = progress
        self.report = IngestReport()
        self._pending: list[_Pending] = []
        self._pending_chunks = 0
        self._display: dict[str, str] = {}
        self._relabelled = False  # unchanged files whose display or owner changed

    @property
    def embedder(self) -> Embedder:
        """Built on first use, so that a sync with nothing to embed loads no model."""
        if self._embedder is None:
            self._embedder = self._embedder_factory()
        return self._embedder

    def _commit(self, chunks: Sequence[Chunk] = ()) -> None:
        """Commit the record (and the store version it describes, see
        :meth:`ragtune.index.core.Index.checkpoint`); ``chunks``: the rows just stored."""
        if self._checkpoint is not None:
            self._checkpoint(self.log, chunks)
        else:
            save_sources(self.folder, self.log)
        self._relabelled = False

    def run(self, paths: Sequence[str | Path], *, prune: bool = True) -> IngestReport:
        start = time.perf_counter()
        files, folders, problems = discover(paths, exclude=self.folder)
        self.report.failed.extend(problems)
        self._display = {source_name(f): display_name(f, folders, self.folder) for f in files}
        for done, path in enumerate(files, start=1):
            self._ingest_file(path)
            if self._pending_chunks >= self.batch_chunks:
                self._flush()
            if self.progress:
                self.progress(done, self.report.chunks_embedded + self._pending_chunks)
        self._flush()
        if self._relabelled:
            self._commit()
        if prune and folders:
            self._prune(folders, {source_name(f) for f in files})
        self.report.chunks_total = sum(len(r.chunk_ids) for r in self.records.values())
        self.report.seconds = time.perf_counter() - start
        return self.report

    def _ingest_file(self, path: Path) -> None:
        source = source_name(path)
        try:
            big = streams(path)  # a large text file: read in blocks, never whole
            if big:
                sha, size = digest(path, self.max_file_bytes)
            else:
                data = read_bytes(path, self.max_file_bytes)
                sha, size = hashlib.sha256(data).hexdigest(), len(data)
            old = self.records.get(source)
            if old is not None and old.sha256 == sha:
                self.report.unchanged.append(source)
                labels = self._labels(source, old)
                if (old.display, old.collection) != labels:
                    self.records[source] = replace(old, display=labels[0],
                                                   collection=labels[1])
                    self._relabelled = True
                return
            stored: tuple[str, ...] = ()
            if big:
                chunks = []
                documents, stored = self._store_streamed(path, source, sha, old)
            else:
                docs = load(path, source)
                documents, chunks = len(docs), [c for d in docs for c in chunk_document(
                    d, self.embedder.count_tokens, self.max_tokens, self.overlap)]
            if not chunks and not stored:
                raise DocumentError(source, "no text found (empty, or a scanned PDF without a "
                                            "text layer)")
        except DocumentError as exc:
            logger.info("skipped %s", exc)
            self.report.failed.append((exc.path, exc.reason))
            return
        except Exception as exc:  # a loader's own error: skip this file, keep the others
            logger.info("skipped %s: unexpected %s", source, type(exc).__name__,
                        exc_info=True)
            self.report.failed.append((source, f"could not be read ({type(exc).__name__}: {exc}); "
                                               "check the file or convert it to another format"))
            return
        pages = max((c.page for c in chunks if c.page is not None), default=None)
        self._pending.append(_Pending(
            source=source, sha256=sha, size=size, chunks=chunks, pages=pages,
            documents=documents, old_ids=old.chunk_ids if old else (), is_new=old is None,
            stored=stored))
        self._pending_chunks += len(chunks)

    def _store_streamed(self, path: Path, source: str, sha: str,
                        old: SourceRecord | None) -> tuple[int, tuple[str, ...]]:
        """Chunk a large text file as it is read (:mod:`ragtune.documents.streaming`),
        embedding and storing ``batch_chunks`` at a time; returns how many documents
        (JSON Lines records) it holds and its chunk ids. Its record
        is committed with the next batch, like any file's; until then the rows are not
        read, and a failure removes them."""
        known = set(old.chunk_ids) if old else set()
        ids: list[str] = []
        added: list[str] = []
        records: set[int | None] = set()
        batch: dict[str, Chunk] = {}
        try:
            for chunk in stream_chunks(path, source, self.embedder.count_tokens,
                                       self.max_tokens, self.overlap, limit=self.max_file_bytes):
                ids.append(chunk.id)
                records.add(chunk.record)
                if chunk.id not in known:
                    batch[chunk.id] = chunk
                if len(batch) >= self.batch_chunks:
                    added += [c.id for c in self._store_new(batch)[0]]
                    batch = {}
            added += [c.id for c in self._store_new(batch)[0]]
            if digest(path, self.max_file_bytes)[0] != sha:
                raise DocumentError(source, "changed while it was read; ingest it again")
        except BaseException:
            if added:  # rows that no record will name: gone, and the store's version
                self.store.delete(added)  # committed with the record as it was
                self._commit()
            raise
        self.report.chunks_reused += len(ids) - len(known.intersection(ids)) - len(added)
        return max(1, len(records)), tuple(ids)

    def _labels(self, source: str, old: SourceRecord | None) -> tuple[str, str | None]:
        """The display name and owner collection to record (a run without a collection
        keeps the owner the source had)."""
        display = self._display.get(source) or PurePosixPath(source).name
        return display, self.collection if self.collection is not None else (
            old.collection if old is not None else None)

    def _flush(self) -> None:
        if not self._pending:
            return
        # ids identify text at a position in a source: a known id has a stored vector
        new_chunks: dict[str, Chunk] = {}
        for p in self._pending:
            old = set(p.old_ids)
            for c in p.chunks:
                if c.id not in old:
                    new_chunks.setdefault(c.id, c)
        # add before delete: a crash in between leaves extra rows that verify removes,
        # never a source with no rows
        to_embed, already = self._store_new(new_chunks)
        stale = [i for p in self._pending for i in set(p.old_ids) - set(p.ids)]
        if stale:
            self.store.delete(stale)
        now = time.time()
        for p in self._pending:
            ids = p.ids
            display, collection = self._labels(p.source, self.records.get(p.source))
            self.records[p.source] = SourceRecord(
                source=p.source, sha256=p.sha256, size=p.size, chunk_ids=ids, pages=p.pages,
                documents=p.documents, ingested_at=now, display=display,
                collection=collection)
            (self.report.added if p.is_new else self.report.updated).append(p.source)
            self.report.chunks_reused += len(set(ids) & (set(p.old_ids) | already))
        self._commit(to_embed)
        self._pending.clear()
        self._pending_chunks = 0

    def _store_new(self, chunks: dict[str, Chunk]) -> tuple[list[Chunk], set[str]]:
        """Embed and store ``chunks`` (by id); returns those embedded and the ids that were
        already stored (rows a crashed run stored without recording them are kept, not
        embedded again)."""
        already = set(self.store.get(list(chunks))) if chunks else set()
        to_embed = [c for i, c in chunks.items() if i not in already]
        if not to_embed:
            return [], already
        vectors = self.embedder.embed([c.index_text for c in to_embed])
        if not np.isfinite(vectors).all():
            raise ValueError("the embedder returned non-finite values; nothing was stored")
        self.store.add(to_embed, vectors)
        self.report.chunks_embedded += len(to_embed)
        return to_embed, already

    def _prune(self, folders: list[Path], seen: set[str]) -> None:
        prefixes = [source_name(f).rstrip("/") + "/" for f in folders]
        gone = [s for s in self.records
                if s not in seen and any(s.startswith(p) for p in prefixes)]
        if not gone:
            return
        self.store.delete([i for s in gone for i in self.records[s].chunk_ids])
        for s in gone:
            del self.records[s]
        self.report.removed.extend(gone)
        self._commit()
