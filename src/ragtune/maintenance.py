"""Knowledge-base upkeep: verify (and repair), remove sources, re-embed, stats, history.

Each function takes a :class:`~ragtune.knowledge_base.KnowledgeBase` and holds its write
lock while it changes anything; the CLI's ``ragtune kb`` commands call them.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.errors import ConfigError, KnowledgeBaseError
from ragtune.index.bm25 import BM25Index
from ragtune.index.ingest import source_name
from ragtune.index.lancedb_store import LanceDBStore
from ragtune.index.lock import write_lock
from ragtune.index.manifest import Manifest
from ragtune.index.sources import SourceLog, load_sources, read_history, save_sources
from ragtune.index.stores import Store, open_store
from ragtune.index.verify import VerifyReport, check
from ragtune.models.protocol import Embedder

if TYPE_CHECKING:
    from ragtune.knowledge_base import KnowledgeBase

logger = logging.getLogger(__name__)


def verify(kb: KnowledgeBase, *, repair: bool = False) -> VerifyReport:
    """Check that record, store and lexical index agree; optionally repair.

    Repairs: roll back an uncommitted write; keep one copy of duplicated rows; delete
    orphan rows and rows with bad vectors; re-ingest sources whose chunks are missing or
    bad (when their file still exists, else drop them from the record); rebuild the
    lexical index. The report lists what was found and what was repaired; after a repair
    the knowledge base is checked again.
    """
    if not repair:
        return _check(kb, kb._open_store())
    with write_lock(kb.path, kb.settings.ingest.lock_timeout_s):
        store = kb._open_store()
        report = _check(kb, store)
        if report.ok:
            return report
        repaired: list[str] = []
        reingest: set[str] = set()
        for problem in report.problems:
            if problem.kind == "uncommitted":
                store = kb._writable_store()
                repaired.append(problem.detail + ": rolled back")
                report = _check(kb, store)  # the other findings may have been the rollback's
                break
        log = load_sources(kb.path)
        for problem in report.problems:
            ids = list(problem.ids)
            if problem.kind == "duplicate" and isinstance(store, LanceDBStore):
                rows = store.rows(store.columns)
                keep: dict[str, int] = {}
                for i, cid in enumerate(rows.column("id").to_pylist()):
                    if cid in problem.ids and cid not in keep:
                        keep[cid] = i
                store.delete(ids)
                store.add_rows(rows.take(list(keep.values())))
                repaired.append(f"kept one copy of {len(ids)} duplicated chunks")
            elif problem.kind in ("orphan", "bad-vector"):
                store.delete(ids)
                repaired.append(f"deleted {len(ids)} {problem.kind} rows")
                reingest.update(problem.sources)
            elif problem.kind in ("missing", "record"):
                reingest.update(problem.sources or
                                {s for s, r in log.sources.items() if set(r.chunk_ids) & set(ids)})
        for source in sorted(reingest):
            record = log.sources.pop(source, None)
            if record is not None:
                store.delete(list(record.chunk_ids))
        log.store_version = store.version
        save_sources(kb.path, log)
        kb._after_write(store, "repair", True, problems=len(report.problems))
    present = [s for s in sorted(reingest) if Path(s).is_file()]
    if present:
        kb.ingest(present, prune=False)
        repaired.append(f"re-ingested {len(present)} sources")
    if len(present) < len(reingest):
        repaired.append(f"dropped {len(reingest) - len(present)} sources whose files are gone")
    repaired.append("rebuilt the lexical index")
    final = _check(kb, kb._open_store())
    final.repaired = repaired
    return final


def reconcile(kb: KnowledgeBase, store: Store, log: SourceLog) -> None:
    """Undo an interrupted write on a store without versions (qdrant): delete rows no
    source records, and forget sources whose rows are incomplete so that the next ingest
    adds them again. Commits the record at the store's current version."""
    ids, _ = store.ids_and_vectors()
    present = set(ids)
    recorded = {i for r in log.sources.values() for i in r.chunk_ids}
    orphans = sorted(present - recorded)
    broken = [s for s, r in log.sources.items() if not set(r.chunk_ids) <= present]
    logger.warning("reconciling an interrupted write to %s: %d orphan rows, %d incomplete "
                   "sources", kb.path, len(orphans), len(broken))
    store.delete(orphans + [i for s in broken for i in log.sources[s].chunk_ids])
    for s in broken:
        del log.sources[s]
    log.store_version = store.version
    save_sources(kb.path, log)


def _check(kb: KnowledgeBase, store: Store) -> VerifyReport:
    log = load_sources(kb.path)
    ids, vectors = store.ids_and_vectors()
    folder = kb.path / "lexical"
    try:
        lexical: BM25Index | None = BM25Index.load(folder)
    except KnowledgeBaseError:
        lexical = None
    return check(log, ids, vectors, kb.manifest.dimension, lexical,
                 BM25Index.stored_version(folder), store.version)


def _match(pattern: str, known: list[str]) -> list[str]:
    if pattern in known:
        return [pattern]
    absolute = source_name(Path(pattern))
    if absolute in known:
        return [absolute]
    folder = absolute.rstrip("/") + "/"
    inside = [s for s in known if s.startswith(folder)]
    if inside:
        return inside
    return [s for s in known if fnmatch.fnmatch(s, pattern) or fnmatch.fnmatch(s, absolute)]


def remove_sources(kb: KnowledgeBase, patterns: Sequence[str]) -> list[str]:
    """Remove the sources matching each pattern: a stored name, a path (file or folder),
    or a glob. A pattern that matches nothing is an error listing some stored sources."""
    with write_lock(kb.path, kb.settings.ingest.lock_timeout_s):
        store = kb._writable_store()
        log = load_sources(kb.path)
        known = sorted(log.sources)
        chosen: list[str] = []
        for pattern in patterns:
            found = _match(pattern, known)
            if not found:
                sample = ", ".join(known[:5]) + (" ..." if len(known) > 5 else "")
                raise ConfigError(f"no source matches {pattern!r}; stored sources: "
                                  f"{sample or '(none)'} (see: ragtune kb list --kb {kb.path})")
            chosen.extend(f for f in found if f not in chosen)
        store.delete([i for s in chosen for i in log.sources[s].chunk_ids])
        for s in chosen:
            del log.sources[s]
        log.store_version = store.version
        save_sources(kb.path, log)
        kb._after_write(store, "remove", bool(chosen), removed=len(chosen))
    return chosen


def reembed(kb: KnowledgeBase, embedder: Embedder | str) -> int:
    """Embed every chunk again with another embedder and switch the knowledge base to it.

    The new vectors go into a fresh store beside the old one, which is swapped in only when
    complete; the manifest then names the new embedder. Chunk boundaries are kept.
    """
    from dataclasses import replace

    from ragtune.models.components import build_embedder

    if isinstance(embedder, str):
        settings = replace(kb.settings.embedder, model=embedder,
                           backend=kb.settings.embedder.backend)
        backend, emb = settings.backend, build_embedder(settings)
    else:
        backend, emb = "custom", embedder
    with write_lock(kb.path, kb.settings.ingest.lock_timeout_s):
        old = kb._writable_store()
        chunks = list(old.scan())
        spec = kb.store_spec
        tmp = kb.path / "store.reembed"
        if spec.backend == "lancedb":
            shutil.rmtree(tmp, ignore_errors=True)
            new = open_store(kb.path, spec, emb.dimension, suffix=".reembed")
        else:
            collection = f"{old.collection}-r{int(time.time())}"  # type: ignore[union-attr]
            new = open_store(kb.path, spec, emb.dimension, collection=collection)
        batch = max(1, kb.settings.ingest.batch_chunks)
        for start in range(0, len(chunks), batch):
            part = chunks[start:start + batch]
            new.add(part, emb.embed([c.index_text for c in part]))
        manifest = Manifest(embedder_backend=backend, embedder_model=emb.name,
                            dimension=emb.dimension, chunk_max_tokens=kb.manifest.chunk_max_tokens,
                            chunk_overlap=kb.manifest.chunk_overlap,
                            created_at=kb.manifest.created_at, store=dict(kb.manifest.store),
                            embedder_precision=str(getattr(emb, "precision", "")))
        if spec.backend == "lancedb":
            # the old store is moved aside first so that a crash leaves one of the two
            aside = kb.path / "store.old"
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(kb.path / "store", aside)
            os.replace(tmp, kb.path / "store")
            manifest.save(kb.path)
            shutil.rmtree(aside, ignore_errors=True)
            store: Store = open_store(kb.path, spec, emb.dimension)
        else:
            manifest.store["collection"] = new.collection  # type: ignore[union-attr]
            manifest.save(kb.path)
            old._client.delete_collection(old.collection)  # type: ignore[union-attr]
            store = new
            kb._shared = new
        kb.manifest = manifest
        kb._embedder = emb
        log = load_sources(kb.path)
        log.store_version = store.version
        save_sources(kb.path, log)
        kb._after_write(store, "reembed", True, embedder=emb.name, chunks=len(chunks))
    return len(chunks)


def stats(kb: KnowledgeBase) -> dict[str, Any]:
    sources = kb.sources()
    store = kb.store
    return {
        "path": str(kb.path), "sources": len(sources),
        "chunks": sum(len(r.chunk_ids) for r in sources),
        "pages": sum(r.pages or 0 for r in sources),
        "bytes_ingested": sum(r.size for r in sources),
        "store_rows": store.count(), "version": kb.version,
        "store_versions": len(store.versions()),
        "disk_bytes": sum(p.stat().st_size for p in kb.path.rglob("*") if p.is_file()),
        "embedder": {"backend": kb.manifest.embedder_backend,
                     "model": kb.manifest.embedder_model, "dimension": kb.manifest.dimension},
        "chunking": {"max_tokens": kb.manifest.chunk_max_tokens,
                     "overlap": kb.manifest.chunk_overlap},
        "last_ingest": max((r.ingested_at for r in sources), default=None),
    }


def history(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Committed changes, oldest first, each with its store version and row count."""
    versions = {int(v["version"]): v for v in kb.store.versions()}
    out = []
    for entry in read_history(kb.path):
        v = versions.get(int(entry["version"])) if entry.get("version") is not None else None
        rows = int(v["metadata"].get("total_rows", 0)) if v and v.get("metadata") else None
        out.append({**entry, "rows": rows,
                    "available": v is not None,
                    "iso_time": time.strftime("%Y-%m-%d %H:%M:%S",
                                              time.localtime(entry["time"]))})
    return out
