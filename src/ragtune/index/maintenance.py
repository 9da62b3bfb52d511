"""Knowledge-base upkeep: verify (and repair), remove sources, re-embed, stats, history.

Each function takes an :class:`~ragtune.index.core.Index` and changes it only inside
:meth:`~ragtune.index.core.Index.write` (the folder's lock), committing with
:meth:`~ragtune.index.core.Index.commit`; :class:`~ragtune.knowledge_base.KnowledgeBase` and
the CLI's ``ragtune kb`` commands call them. The module is a little over 400 lines because
each operation is one whole transaction (check, change, commit) kept readable in one place.
"""

from __future__ import annotations

import fnmatch
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragtune.config import EmbedderSettings
from ragtune.errors import ConfigError, KnowledgeBaseError
from ragtune.index.bm25 import BM25Index
from ragtune.index.core import LEXICAL, Index
from ragtune.index.ingest import source_name
from ragtune.index.lancedb_store import TABLE, LanceDBStore
from ragtune.index.manifest import Manifest
from ragtune.index.reader import ANN_DIR
from ragtune.index.sources import read_history, save_sources
from ragtune.index.stores import Store, open_store
from ragtune.index.verify import VerifyReport, check
from ragtune.models.protocol import Embedder

logger = logging.getLogger(__name__)
SAMPLE_FILES = 20  # files read to decide a new knowledge base's language
SAMPLE_CHARS = 20_000  # characters of each


def verify(index: Index, *, repair: bool = False,
           reingest: Callable[[list[str]], object] = lambda paths: None) -> VerifyReport:
    """Check that record, store and lexical index agree; optionally repair.

    Repairs: roll back an uncommitted write; keep one copy of duplicated rows; delete
    orphan rows and rows with bad vectors; re-ingest (with ``reingest``) sources whose
    chunks are missing or bad when their file still exists, else drop them from the record;
    rebuild the lexical index. The report lists what was found and what was repaired; after
    a repair the knowledge base is checked again.
    """
    if not repair:
        return _check_committed(index)
    reingest_sources: set[str] = set()
    with index.write(undo=False) as store:
        report = _check(index, store)
        if report.ok:
            return report
        repaired = [p.detail + ": rolled back" for p in report.problems
                    if p.kind == "uncommitted"]
        if repaired:
            store = index.writable_store()
            report = _check(index, store)  # the other findings may have been the rollback's
        log = index.record()
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
                reingest_sources.update(problem.sources)
            elif problem.kind in ("missing", "record"):
                reingest_sources.update(
                    problem.sources
                    or {s for s, r in log.sources.items() if set(r.chunk_ids) & set(ids)})
        for source in sorted(reingest_sources):
            record = log.sources.pop(source, None)
            if record is not None:
                store.delete(list(record.chunk_ids))
        shutil.rmtree(index.path / ANN_DIR, ignore_errors=True)  # built again from the store
        index.commit(store, log, "repair", problems=len(report.problems))
        index.rebuild_lexical(store)
    present = [s for s in sorted(reingest_sources) if Path(s).is_file()]
    if present:
        reingest(present)
        repaired.append(f"re-ingested {len(present)} sources")
    if len(present) < len(reingest_sources):
        repaired.append(f"dropped {len(reingest_sources) - len(present)} sources whose files "
                        "are gone")
    repaired.append("rebuilt the lexical index")
    final = _check(index, index.open_store())
    final.repaired = repaired
    return final


def _check(index: Index, store: Store, *, catch_up: bool = False) -> VerifyReport:
    """``catch_up``: a lexical index saved behind the record (an ingest killed before it
    saved it) is brought up to date as searches do, and noted rather than a problem."""
    log = index.record()
    ids, vectors = store.ids_and_vectors()
    folder = index.path / LEXICAL
    try:
        lexical: BM25Index | None = BM25Index.load(folder) if folder.exists() else None
    except KnowledgeBaseError:
        lexical = None
    saved = BM25Index.stored_version(folder) if lexical is not None else None
    behind = (catch_up and log.store_version is not None and saved != log.store_version
              and (lexical is not None or not folder.exists()))
    if behind:
        lexical, saved = index.lexical, log.store_version
    report = check(log, ids, vectors, index.manifest.dimension, lexical, saved, store.version)
    if behind:
        report.notes.append("the lexical index on disk is behind the record (an interrupted "
                            "ingest); searches bring it up to date and the next write saves it")
    return report


def _check_committed(index: Index) -> VerifyReport:
    """Check what readers see (:attr:`Index.store`, the committed version). A LanceDB store
    past it holds an interrupted write (a process killed mid-ingest): readers never see it
    and the next write rolls it back, so it is a note, not a problem."""
    report = _check(index, index.store, catch_up=True)
    committed = index.record().store_version
    newest = index.open_store()
    if isinstance(newest, LanceDBStore) and committed is not None and newest.version != committed:
        report.notes.append(
            f"an interrupted write (store version {newest.version} against {committed} "
            "committed) is not visible to readers; the next write or kb verify --repair rolls "
            "it back")
    return report


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


def remove_sources(index: Index, patterns: Sequence[str]) -> list[str]:
    """Remove the sources matching each pattern: a stored name, a path (file or folder),
    or a glob. A pattern that matches nothing is an error listing some stored sources."""
    with index.write() as store:
        log = index.record()
        known = sorted(log.sources)
        chosen: list[str] = []
        for pattern in patterns:
            found = _match(pattern, known)
            if not found:
                sample = ", ".join(known[:5]) + (" ..." if len(known) > 5 else "")
                raise ConfigError(f"no source matches {pattern!r}; stored sources: "
                                  f"{sample or '(none)'} (see: ragtune kb list --kb "
                                  f"{index.path})")
            chosen.extend(f for f in found if f not in chosen)
        store.delete([i for s in chosen for i in log.sources[s].chunk_ids])
        for s in chosen:
            del log.sources[s]
        index.commit(store, log, "remove", changed=bool(chosen), removed=len(chosen))
    return chosen


def reembed(index: Index, embedder: Embedder, backend: str, *, batch: int = 256) -> int:
    """Embed every chunk again with ``embedder`` and switch the knowledge base to it
    (``backend``: the name the manifest records for it, see :func:`resolve_embedder`).

    Every stored row is kept as it is (text, provenance, ingest time, chunk boundaries) with
    only its vector replaced. The new vectors go into a new table (LanceDB) or collection
    (qdrant) beside the old one, which stays what searches read until the new one is
    complete; an error on the way removes the new one and leaves the knowledge base as it
    was. Returns the number of chunks.
    """
    with index.write() as store:
        return _switch_embedder(index, store, embedder, backend, auto=False, batch=batch)


def adopt_language_default(index: Index, paths: Sequence[str | Path],
                           settings: EmbedderSettings, *, batch: int = 256,
                           ) -> Embedder | None:
    """Before the first ingest into a knowledge base whose embedder nobody chose: switch
    it to the multilingual embedder when most of the documents about to be ingested are
    in Chinese. Returns the embedder it switched to, if it did (an empty knowledge base
    switches instantly)."""
    from ragtune.models.components import MULTILINGUAL

    if not index.manifest.embedder_auto or index.manifest.embedder_model == MULTILINGUAL:
        return None
    if index.record().sources or corpus_language(paths, exclude=index.path) != "zh":
        return None
    emb, backend = resolve_embedder(settings, MULTILINGUAL)
    with index.write() as store:
        if index.record().sources:  # another writer got there first
            return None
        _switch_embedder(index, store, emb, backend, auto=True, batch=batch)
    logger.info("knowledge base %s: documents mostly in Chinese, embedder %s", index.path,
                MULTILINGUAL)
    return emb


def keep_embedder(index: Index) -> None:
    """Record that the knowledge base's embedder was chosen on purpose (``--embedder``
    naming the default model), so that the first ingest keeps it whatever the documents'
    language."""
    if not index.manifest.embedder_auto:
        return
    with index.write():
        index.manifest = replace(Manifest.load(index.path), embedder_auto=False)
        index.manifest.save(index.path)


def corpus_language(paths: Sequence[str | Path], *, exclude: Path | None = None,
                    files: int = SAMPLE_FILES, chars: int = SAMPLE_CHARS) -> str:
    """``"zh"`` when at least half of the first ``files`` readable files are in Chinese
    (by :func:`~ragtune.documents.language.detect_language` on their first ``chars``
    characters), else ``"en"``."""
    from ragtune.documents.language import detect_language
    from ragtune.documents.loaders import load
    from ragtune.index.ingest import discover

    found, _, _ = discover(paths, exclude=exclude)
    votes: list[str] = []
    for path in found:
        if len(votes) >= files:
            break
        try:
            docs = load(path, source_name(path))
        except Exception:  # an unreadable file: the ingest itself reports it
            continue
        text = "".join(d.text for d in docs)[:chars]
        if text.strip():
            votes.append(detect_language(text))
    return "zh" if votes and 2 * votes.count("zh") >= len(votes) else "en"


def resolve_embedder(settings: EmbedderSettings, embedder: Embedder | str,
                     ) -> tuple[Embedder, str]:
    """The embedder to switch to and the backend name the manifest records for it: a
    built one is ``custom``; a model name is built from ``settings`` (a bundled name
    selects its backend)."""
    if not isinstance(embedder, str):
        return embedder, "custom"
    from ragtune.models.components import DEFAULT_BACKEND, build_embedder, embedder_settings
    from ragtune.models.registry import BUNDLED

    settings = replace(settings, precision="auto")
    if embedder.lower() in {m.name for m in BUNDLED if m.role == "embedder"}:
        settings = replace(settings, backend=DEFAULT_BACKEND)  # a bundled name: its backend
    settings = embedder_settings(settings, embedder)
    return build_embedder(settings), settings.backend


def _switch_embedder(index: Index, old: Store, emb: Embedder, backend: str, *, auto: bool,
                     batch: int) -> int:
    """Re-embed every row of ``old`` into a new table or collection, then commit (inside
    :meth:`Index.write`).

    The commit takes three writes, each leaving a knowledge base that opens correctly:
    the record first stops naming a store version (a store is then read at its newest
    version, which under the lock is the committed one), then the manifest names the new
    embedder and table, then the record names the new table's version.
    """
    spec = index.store_spec
    suffix = f"r{int(time.time() * 1000)}"
    if spec.backend == "lancedb":
        assert isinstance(old, LanceDBStore)
        for stale in set(old.tables()) - {old.table}:  # left by a re-embed that crashed
            old.drop_table(stale)
        new_spec = replace(spec, table=f"{TABLE}_{suffix}")
    else:
        new_spec = replace(spec, collection=f"{old.collection}-{suffix}")  # type: ignore[union-attr]
    new = open_store(index.path, new_spec, emb.dimension,
                     client=None if isinstance(old, LanceDBStore) else old._client)
    count = 0
    try:
        count = _copy_reembedded(old, new, emb, max(1, batch))
        if new.count() != old.count():
            raise KnowledgeBaseError(f"re-embedding wrote {new.count()} rows for "
                                     f"{old.count()} chunks; the knowledge base is unchanged")
    except BaseException:
        _drop(old, new)
        raise
    manifest = replace(index.manifest, embedder_backend=backend, embedder_model=emb.name,
                       dimension=emb.dimension, store=new_spec.to_dict(),
                       embedder_precision=str(getattr(emb, "precision", "")),
                       embedder_auto=auto)
    log = index.record()
    log.store_version = None
    save_sources(index.path, log)
    # the vector index and its score moments describe the old vectors
    shutil.rmtree(index.path / ANN_DIR, ignore_errors=True)
    manifest.save(index.path)
    index.manifest = manifest
    index.use_store(new)
    index.checkpoint(new, log)
    _drop(new, old)
    index.commit(new, log, "reembed", embedder=emb.name, chunks=count)
    return count


def _copy_reembedded(old: Store, new: Store, emb: Embedder, batch: int) -> int:
    """Every row of ``old`` into ``new`` with its vector from ``emb``; returns the count."""
    if isinstance(old, LanceDBStore) and isinstance(new, LanceDBStore):
        rows = old.rows([c for c in old.columns if c != "vector"])
        texts = [c.index_text for c in _chunks_in_order(old, rows.column("id").to_pylist())]
        for start in range(0, rows.num_rows, batch):
            part = rows.slice(start, batch)
            vectors = _checked(emb.embed(texts[start:start + batch]), part.num_rows,
                               emb.dimension)
            new.add_rows(_with_vectors(part, vectors, new.schema))
        return int(rows.num_rows)
    chunks = list(old.scan())
    for start in range(0, len(chunks), batch):
        part = chunks[start:start + batch]
        new.add(part, _checked(emb.embed([c.index_text for c in part]), len(part),
                               emb.dimension))
    return len(chunks)


def _chunks_in_order(store: LanceDBStore, ids: list[str]) -> list[Any]:
    found = store.get(ids)
    return [found[i] for i in ids]


def _checked(vectors: Any, rows: int, dimension: int) -> Any:
    import numpy as np

    array = np.asarray(vectors, dtype=np.float32)
    if array.shape != (rows, dimension) or not np.isfinite(array).all():
        raise KnowledgeBaseError(f"the new embedder returned vectors of shape {array.shape} "
                                 f"(expected ({rows}, {dimension})) or non-finite values; "
                                 "the knowledge base is unchanged")
    return array


def _with_vectors(rows: Any, vectors: Any, schema: Any) -> Any:
    """``rows`` in the new table's ``schema``, with ``vectors``; a column an older store
    lacks is left empty."""
    import pyarrow as pa

    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    columns = {"vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])}
    for field in schema:
        if field.name != "vector":
            columns[field.name] = (rows.column(field.name).cast(field.type)
                                   if field.name in rows.column_names
                                   else pa.nulls(rows.num_rows, type=field.type))
    return pa.table({f.name: columns[f.name] for f in schema}, schema=schema)


def _drop(keep: Store, gone: Store) -> None:
    """Remove the table or collection ``gone`` (another one of the same store)."""
    if isinstance(keep, LanceDBStore) and isinstance(gone, LanceDBStore):
        keep.drop_table(gone.table)
    elif not isinstance(gone, LanceDBStore):
        gone._client.delete_collection(gone.collection)


def stats(index: Index) -> dict[str, Any]:
    sources = index.sources()
    store = index.store
    return {
        "path": str(index.path), "sources": len(sources),
        "chunks": sum(len(r.chunk_ids) for r in sources),
        "pages": sum(r.pages or 0 for r in sources),
        "bytes_ingested": sum(r.size for r in sources),
        "store_rows": store.count(), "version": index.version,
        "store_versions": len(store.versions()),
        "disk_bytes": sum(p.stat().st_size for p in index.path.rglob("*") if p.is_file()),
        "embedder": {"backend": index.manifest.embedder_backend,
                     "model": index.manifest.embedder_model,
                     "dimension": index.manifest.dimension},
        "chunking": {"max_tokens": index.manifest.chunk_max_tokens,
                     "overlap": index.manifest.chunk_overlap},
        "last_ingest": max((r.ingested_at for r in sources), default=None),
    }


def history(index: Index) -> list[dict[str, Any]]:
    """Committed changes, oldest first, each with its store version and row count."""
    versions = {int(v["version"]): v for v in index.store.versions()}
    out = []
    for entry in read_history(index.path):
        v = versions.get(int(entry["version"])) if entry.get("version") is not None else None
        rows = int(v["metadata"].get("total_rows", 0)) if v and v.get("metadata") else None
        out.append({**entry, "rows": rows,
                    "available": v is not None,
                    "iso_time": time.strftime("%Y-%m-%d %H:%M:%S",
                                              time.localtime(entry["time"]))})
    return out
