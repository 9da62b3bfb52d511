"""Documents and retrieval: ``/v1/documents`` (upload, list, delete) and ``/v1/retrieve``.

Uploads are saved under the knowledge base's ``uploads/`` folder with a sanitised name (no
folders, no hidden files, only the suffixes ragtune can read), then ingested incrementally.
A file that fails to ingest is put back as it was, so what was stored is not lost.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import threading
import unicodedata
import uuid
from os.path import basename
from pathlib import Path
from typing import Any

from ragtune.documents.loaders import LOADERS
from ragtune.index.ingest import source_name
from ragtune.index.sources import SourceRecord
from ragtune.knowledge_base import KnowledgeBase
from ragtune.retrieve.filters import Filter, parse_pages, parse_time
from ragtune.serve.errors import ApiError
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


def describe(record: SourceRecord, uploads: Path) -> DocumentOut:
    return DocumentOut(
        id=document_id(record.source), name=basename(record.source), source=record.source,
        size=record.size, chunks=len(record.chunk_ids), pages=record.pages,
        ingested_at=record.ingested_at,
        uploaded=Path(record.source).parent == uploads.resolve())


def make_filter(f: Filters | None) -> Filter | None:
    if f is None:
        return None
    try:
        out = Filter(source=f.source, pages=parse_pages(f.pages) if f.pages else None,
                     since=parse_time(f.since) if f.since else None,
                     until=parse_time(f.until) if f.until else None)
    except Exception as exc:  # the parsers raise ConfigError naming the expected form
        raise ApiError(400, str(exc), param="filters") from None
    return None if out.empty else out


def hits(kb: KnowledgeBase, query: str, k: int, mode: str, f: Filters | None) -> list[HitOut]:
    found = kb.search(query, k=k, mode=mode, filter=make_filter(f))
    return [HitOut(id=h.chunk.id, source=h.chunk.source, name=basename(h.chunk.source),
                   page=h.chunk.page, text=h.chunk.text, score=round(h.score, 6),
                   heading=h.chunk.heading) for h in found]


def restore(previous: dict[Path, bytes | None]) -> None:
    """Put files back as they were before an upload: removed when new, else old bytes."""
    for target, old in previous.items():
        if old is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(old)


class Library:
    """The knowledge base's documents as the API sees them; writes are one at a time."""

    def __init__(self, kb: KnowledgeBase, uploads: str) -> None:
        self.kb = kb
        self.uploads = kb.path / uploads
        self._write = threading.Lock()

    def documents(self) -> list[DocumentOut]:
        return [describe(r, self.uploads) for r in sorted(self.kb.sources(),
                                                           key=lambda r: r.source)]

    def add(self, files: list[tuple[str | None, bytes]]) -> dict[str, Any]:
        """Save and ingest ``(name, content)`` pairs; all names are checked before any write."""
        named = [(safe_name(name), data) for name, data in files]
        if not named:
            raise ApiError(400, "no file in the upload; send multipart field 'file'",
                           param="file")
        self.uploads.mkdir(parents=True, exist_ok=True)
        with self._write:
            previous: dict[Path, bytes | None] = {}
            try:  # every file is written, then ingested; any failure puts all of them back
                for name, data in named:
                    target = self.uploads / name
                    if target not in previous:  # the same name twice: keep the first bytes
                        previous[target] = target.read_bytes() if target.exists() else None
                    tmp = self.uploads / f".{uuid.uuid4().hex}.part"
                    try:
                        tmp.write_bytes(data)
                        os.replace(tmp, target)
                    finally:
                        tmp.unlink(missing_ok=True)
                report = self.kb.ingest(list(previous), prune=False)
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
        names = {source_name(p) for p in previous}
        return {"data": [describe(r, self.uploads) for r in self.kb.sources()
                         if r.source in names],
                "added": len(report.added), "updated": len(report.updated),
                "unchanged": len(report.unchanged)}

    def delete(self, doc_id: str) -> DocumentOut:
        with self._write:
            record = next((r for r in self.kb.sources() if document_id(r.source) == doc_id),
                          None)
            if record is None:
                raise ApiError(404, f"no document with id {doc_id!r}; list them with GET "
                               "/v1/documents", param="id", code="document_not_found")
            out = describe(record, self.uploads)
            self.kb.remove([record.source])
            if out.uploaded:  # only files the server itself saved are deleted from disk
                Path(record.source).unlink(missing_ok=True)
        return out
