"""Builds the 100,000-chunk knowledge base used by bench/retrieval_latency.py.

Real text with real embeddings first: the SciFact corpus (and the SQuAD paragraphs when the
sync benchmark's knowledge base exists), taken from the knowledge bases the other
benchmarks build; then perturbed copies up to the target size: each copy drops a random
fifth of the words and moves the vector by Gaussian noise (cosine to the original about
0.95), so that copies are near, not identical, to real chunks.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np

from ragtune import KnowledgeBase
from ragtune.index.sources import SourceRecord
from ragtune.types import Chunk


def real_chunks(kbs: list[Path]) -> tuple[list[Chunk], np.ndarray]:
    chunks: list[Chunk] = []
    vectors = []
    for path in kbs:
        if not (path / "manifest.json").exists():
            continue
        kb = KnowledgeBase.open(path)
        ids, v = kb.store.ids_and_vectors()
        by_id = {c.id: c for c in kb.store.scan()}
        chunks += [by_id[i] for i in ids]
        vectors.append(v)
    return chunks, np.concatenate(vectors)


def build(target: Path, sources: list[Path], size: int, seed: int = 0) -> KnowledgeBase:
    if (target / "manifest.json").exists():
        kb = KnowledgeBase.open(target)
        if kb.store.count() == size:
            return kb
        raise SystemExit(f"{target} exists with another size; delete it first")
    chunks, vectors = real_chunks(sources)
    if not chunks:
        raise SystemExit("no source knowledge base: run bench/retrieval_beir.py first")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    start = time.perf_counter()
    kb = KnowledgeBase.create(target)
    with kb.index.write() as store:
        _fill(kb, store, chunks, vectors, size, rng, nrng)
    print(f"built {size} chunks in {time.perf_counter() - start:.0f} s")
    return KnowledgeBase.open(target)


def _fill(kb: KnowledgeBase, store, chunks: list[Chunk], vectors: np.ndarray, size: int,
          rng: random.Random, nrng: np.random.Generator) -> None:
    log = kb.index.record()
    batch_chunks, batch_vectors = [], []
    n = 0
    while n < size:
        i = n % len(chunks)
        c, v = chunks[i], vectors[i]
        copy = n // len(chunks)
        if copy:
            words = c.text.split()
            kept = [w for w in words if rng.random() > 0.2] or words
            c = Chunk(id=f"{c.id}-{copy}", source=f"{c.source}#copy{copy}", text=" ".join(kept),
                      start=c.start, end=c.end, page=c.page, heading=c.heading, line=c.line,
                      title=c.title, record=c.record, context=c.context)
            v = v + nrng.normal(0, 0.018, size=v.shape).astype(np.float32)
            v = v / np.linalg.norm(v)
        batch_chunks.append(c)
        batch_vectors.append(v)
        n += 1
        if len(batch_chunks) == 10_000 or n == size:
            store.add(batch_chunks, np.stack(batch_vectors))
            for ch in batch_chunks:
                record = log.sources.get(ch.source)
                ids = (record.chunk_ids if record else ()) + (ch.id,)
                log.sources[ch.source] = SourceRecord(ch.source, "synthetic", 0, ids, None, 1,
                                                      time.time())
            kb.index.checkpoint(store, log, batch_chunks)  # the lexical index needs no re-read
            batch_chunks, batch_vectors = [], []
    kb.index.commit(store, log, "ingest", synthetic=size)
