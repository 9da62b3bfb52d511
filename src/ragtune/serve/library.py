"""Documents and retrieval: ``/v1/documents`` (upload, list, delete) and ``/v1/retrieve``.

Uploads are saved under the knowledge base's ``uploads/`` folder with a sanitised name (no
folders, no hidden files, only the suffixes ragtune can read), then ingested incrementally.
A file that fails to ingest is put back as it was, so what was stored is not lost.

Each upload belongs to the collection of the key that sent it (see
:mod:`ragtune.serve.keys`): it is saved in ``uploads/COLLECTION/`` (the ``default``
collection's in ``uploads/`` itself, where uploads went before collections) and recorded
with that collection. A write key may overwrite and delete its own collection's documents
only; an admin key any. Sources are shown by their display names, never by server paths.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import threading
import unicodedata
import uuid
from collections.abc import Mapping
from os.path import basename
from pathlib import Path
from typing import Any, Literal

from ragtune.display import relabel_hits, shown
from ragtune.documents.loaders import LOADERS
from ragtune.index.ingest import source_name
from ragtune.index.sources import SourceRecord
from ragtune.knowledge_base import KnowledgeBase
from ragtune.retrieve.filters import Filter, parse_pages, parse_time, shown_sources
from ragtune.serve.errors import ApiError
from ragtune.serve.keys import DEFAULT_COLLECTION, ApiKey
from ragtune.serve.schemas import DocumentOut, Filters, HitOut

MAX_NAME = 120  # characters
MAX_NAME_BYTES = 200  # UTF-8 bytes, under the 255 that most file systems allow
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def safe_name(raw: str | None) -> str:
    """A file name that stays inside the uploads folder: the last path component, with
    anything but letters, digits, ``.``, ``-``, ``_`` and spaces replaced, no leading dots.

    Raises ApiError(400) for an empty name or a suffix ragtune cannot ingest.
    """
    name = unicodedata.normalize("NFKC", raw or "").replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    stem, suffix = os.path.splitext(name)
    if not stem or not suffix:
        raise ApiError(400, f"file name {raw!r} has no usable name and suffix; name the file "
                       "like report.pdf", param="file")
    if suffix.lower() not in LOADERS:
        raise ApiError(400, f"{name}: cannot ingest {suffix} files; supported: "
                       + ", ".join(sorted(LOADERS)), param="file")
    stem = stem[:MAX_NAME - len(suffix)]
    # file systems limit a name's bytes (255 on most): cut on a character boundary
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix.lower()


def document_id(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def status_of(record: SourceRecord) -> Literal["indexed", "moved", "no text"]:
    """indexed; no text (nothing to search); moved: searchable, but its file is no longer
    where it was ingested from, so its pages cannot be shown until it is ingested again."""
    if not record.chunk_ids:
        return "no text"
    return "indexed" if Path(record.source).exists() else "moved"


def describe(record: SourceRecord, names: Mapping[str, str], owner: str | None
             ) -> DocumentOut:
    return DocumentOut(
        id=document_id(record.source), name=basename(record.source),
        source=shown(record.source, names), size=record.size, chunks=len(record.chunk_ids),
        pages=record.pages, ingested_at=record.ingested_at,
        status=status_of(record), uploaded=owner is not None,
        collection=owner)


def make_filter(f: Filters | None, names: Mapping[str, str]) -> Filter | None:
    """The search filter of a request; its ``source`` glob matches the names the server
    shows (``names``: stored -> shown), never the stored paths of this machine."""
    if f is None:
        return None
    try:
        out = Filter(sources=shown_sources(f.source, names) if f.source else None,
                     pages=parse_pages(f.pages) if f.pages else None,
                     since=parse_time(f.since) if f.since else None,
                     until=parse_time(f.until) if f.until else None)
    except Exception as exc:  # the parsers raise ConfigError naming the expected form
        raise ApiError(400, str(exc), param="filters") from None
    return None if out.empty else out


def hits(kb: KnowledgeBase, query: str, k: int, mode: str, f: Filters | None) -> list[HitOut]:
    names = kb.display_names()
    found = relabel_hits(kb.search(query, k=k, mode=mode, filter=make_filter(f, names)),
                         names)
    return [HitOut(id=h.chunk.id, source=h.chunk.source, name=basename(h.chunk.source),
                   page=h.chunk.page, text=h.chunk.text, score=round(h.score, 6),
                   heading=h.chunk.heading, kind=h.chunk.kind,
                   boxes=[list(b) for b in h.chunk.boxes]) for h in found]


def restore(previous: dict[Path, bytes | None]) -> None:
    """Put files back as they were before an upload: removed when new, else old bytes."""
    for target, old in previous.items():
        if old is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(old)


def refuse(record: SourceRecord, owner: str | None, caller: ApiKey, names: Mapping[str, str],
           action: str) -> ApiError:
    """403 for a write key that acts on a document it does not own."""
    if owner is None:
        whose = "was not uploaded (the server's operator ingested it)"
    else:
        whose = f"belongs to collection {owner!r}"
    return ApiError(403, f"{shown(record.source, names)} {whose}; this key writes collection "
                    f"{caller.collection!r}, and to {action} another collection's document "
                    "takes an admin key", code="not_owner")


class Library:
    """The knowledge base's documents as the API sees them; writes are one at a time."""

    def __init__(self, kb: KnowledgeBase, uploads: str) -> None:
        self.kb = kb
        self.uploads = kb.path / uploads
        self._write = threading.Lock()

    def folder(self, collection: str) -> Path:
        """Where ``collection``'s uploads are saved."""
        return self.uploads if collection == DEFAULT_COLLECTION else self.uploads / collection

    def owner(self, record: SourceRecord) -> str | None:
        """The collection that uploaded a document; None for a file the operator ingested.
        Uploads recorded before collections were have theirs read from the folder."""
        if record.collection is not None:
            return record.collection
        root = source_name(self.uploads).rstrip("/") + "/"
        if not record.source.startswith(root):
            return None
        parts = record.source[len(root):].split("/")
        return DEFAULT_COLLECTION if len(parts) == 1 else parts[0] if len(parts) == 2 else None

    def documents(self) -> list[DocumentOut]:
        names = self.kb.display_names()
        return [describe(r, names, self.owner(r)) for r in self.kb.sources()]

    def add(self, files: list[tuple[str | None, bytes]], caller: ApiKey) -> dict[str, Any]:
        """Save and ingest ``(name, content)`` pairs in ``caller``'s collection; all names
        and owners are checked before any write."""
        named = [(safe_name(name), data) for name, data in files]
        if not named:
            raise ApiError(400, "no file in the upload; send multipart field 'file'",
                           param="file")
        folder = self.folder(caller.collection)
        folder.mkdir(parents=True, exist_ok=True)
        with self._write:
            if not caller.allows("admin"):
                records = {r.source: r for r in self.kb.sources()}
                for name, _ in named:
                    record = records.get(source_name(folder / name))
                    if record is not None and self.owner(record) != caller.collection:
                        raise refuse(record, self.owner(record), caller,
                                     self.kb.display_names(), "overwrite")
            previous: dict[Path, bytes | None] = {}
            try:  # every file is written, then ingested; any failure puts all of them back
                for name, data in named:
                    target = folder / name
                    if target not in previous:  # the same name twice: keep the first bytes
                        previous[target] = target.read_bytes() if target.exists() else None
                    tmp = folder / f".{uuid.uuid4().hex}.part"
                    try:
                        tmp.write_bytes(data)
                        os.replace(tmp, target)
                    finally:
                        tmp.unlink(missing_ok=True)
                report = self.kb.ingest(list(previous), prune=False,
                                        collection=caller.collection)
            except OSError as exc:
                restore(previous)
                status = {errno.ENOSPC: 507, errno.EACCES: 500, errno.EROFS: 500}
                raise ApiError(status.get(exc.errno or 0, 400),
                               f"could not save the upload ({exc.strerror or exc}); nothing "
                               "was changed", param="file", code="upload_failed") from None
            except BaseException:
                restore(previous)
                raise
            if report.failed:
                failed = {source for source, _ in report.failed}
                restore({target: old for target, old in previous.items()
                         if any(f == source_name(target) or f.startswith(source_name(target) + ":")
                                for f in failed)})
                why = "; ".join(f"{basename(p)}: {r}" for p, r in report.failed)
                kept = len(report.added) + len(report.updated) + len(report.unchanged)
                others = (f" The other {kept} file(s) in the upload were ingested." if kept
                          else "")
                raise ApiError(400, f"could not ingest {why}. Nothing was changed for the "
                               f"failed file(s); fix or convert them and upload again.{others}",
                               param="file", code="ingest_failed")
        sent = {source_name(p) for p in previous}
        names = self.kb.display_names()
        return {"data": [describe(r, names, self.owner(r)) for r in self.kb.sources()
                         if r.source in sent],
                "added": len(report.added), "updated": len(report.updated),
                "unchanged": len(report.unchanged)}

    def delete(self, doc_id: str, caller: ApiKey) -> DocumentOut:
        """Remove a document (and its file, when the server saved it) for ``caller``."""
        with self._write:
            record = next((r for r in self.kb.sources() if document_id(r.source) == doc_id),
                          None)
            if record is None:
                raise ApiError(404, f"no document with id {doc_id!r}; list them with GET "
                               "/v1/documents", param="id", code="document_not_found")
            owner, names = self.owner(record), self.kb.display_names()
            if not caller.allows("admin") and owner != caller.collection:
                raise refuse(record, owner, caller, names, "delete")
            out = describe(record, names, owner)
            self.kb.remove([record.source])
            # only files the server itself saved are deleted from disk
            inside = record.source.startswith(source_name(self.uploads).rstrip("/") + "/")
            if owner is not None and inside:
                Path(record.source).unlink(missing_ok=True)
        return out
