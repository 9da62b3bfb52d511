"""Ingest speed with the embedding in worker processes or on Ray, against a plain ingest.

The SciFact corpus (``scifact/corpus.jsonl``, one document per record) is ingested into a
new knowledge base with the default settings three ways, in one run: plain (one
process), ``workers=2`` (two spawned embedding processes, one thread each), and
``ray="local"`` (a local Ray instance, Ray Data ``map_batches`` over two actors).
Reported: wall-clock seconds of ``KnowledgeBase.ingest`` (reading, chunking, embedding
and writing; worker and Ray start-up included), chunks per second, the ratio to the
plain ingest, and how far each one's stored vectors are from the plain ingest's (the
largest absolute difference of any component, and how many vectors are bit-identical).

    python bench/ingest_workers.py [--workers 2] [--no-ray] [--docs 0]
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np

from _common import RESULTS, data_dir, require, write_result


def ingest(folder, source, **how) -> tuple[float, int, dict[str, np.ndarray]]:
    from ragtune import KnowledgeBase

    shutil.rmtree(folder, ignore_errors=True)
    with KnowledgeBase.create(folder) as kb:
        began = time.perf_counter()
        report = kb.ingest([source], **how)
        seconds = time.perf_counter() - began
        assert not report.failed, report.failed
        assert kb.verify().ok, f"kb verify failed after ingest {how}"
        ids, vectors = kb.store.ids_and_vectors()
    return seconds, report.chunks_embedded, dict(zip(ids, vectors, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--docs", type=int, default=0, help="first N documents (0: all)")
    args = parser.parse_args()
    source = require(data_dir() / "scifact" / "corpus.jsonl")
    work = RESULTS / "ingest_workers"
    work.mkdir(parents=True, exist_ok=True)
    if args.docs:
        lines = source.read_text().splitlines()[: args.docs]
        source = work / "corpus.jsonl"
        source.write_text("\n".join(lines) + "\n")
    ways: dict[str, dict[str, object]] = {"plain": {}, f"workers={args.workers}":
                                          {"workers": args.workers}}
    if not args.no_ray:
        ways[f"ray local, {args.workers} actors"] = {"ray": "local", "workers": args.workers}
    rows = {}
    plain: dict[str, np.ndarray] = {}
    for name, how in ways.items():
        seconds, chunks, vectors = ingest(work / "kb", source, **how)
        if not plain:
            plain = vectors
        assert vectors.keys() == plain.keys()
        diff = max(float(np.abs(vectors[k] - plain[k]).max()) for k in plain)
        same = sum(bool(np.array_equal(vectors[k], plain[k])) for k in plain)
        rows[name] = {"seconds": seconds, "chunks": chunks, "chunks_per_s": chunks / seconds,
                      "max_abs_difference": diff, "identical_vectors": same}
        print(f"{name}: {chunks} chunks in {seconds:.1f} s", flush=True)
    base = rows["plain"]["chunks_per_s"]
    print("\n| ingest | chunks | seconds | chunks/s | vs plain | max abs diff | identical |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['chunks']} | {r['seconds']:.1f} | {r['chunks_per_s']:.1f} | "
              f"{r['chunks_per_s'] / base:.2f}x | {r['max_abs_difference']:.1e} | "
              f"{r['identical_vectors']} of {len(plain)} |")
    path = write_result("ingest_workers", {"source": str(source.name), "ways": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
