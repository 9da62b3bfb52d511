"""Seconds per knowledge-base write: one small document added to, then removed from, a
knowledge base holding the SciFact corpus (5,183 documents), with this checkout's code
against a baseline revision's, in the same run.

    python bench/write_speed.py [--baseline REV] [--writes 5] [--ann-min-rows N] [--copies N]

``--copies N`` ingests N copies of the corpus file (``corpus-0.jsonl`` ...), N x 8,114
chunks, for the size at which a pass over every vector starts to count.

With ``--ann-min-rows`` below the corpus's chunk count (8,114) both sides keep an HNSW graph
(``retrieval.ann_min_rows``), so each write also updates the graph and its vector moments.

The baseline's ``src/`` is taken with ``git archive REV``. One knowledge base is built
first with the baseline (so it is one from before the tokenised corpus was kept), then each
side works in its own process on its own copy. Chunks are embedded by the test embedder
(:class:`ragtune.testing.FakeEmbedder`, 384-d): embedding the one chunk of a small document
costs both sides the same and is not what is measured. A write is ``kb.ingest([file])`` of
a new 40-word text file, a removal ``kb.remove([file])``; each is timed whole (lock,
commit, lexical index, history). This checkout's first write on the old knowledge base
migrates it (builds the tokenised corpus from the store) and is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _common import ROOT, data_dir, machine, require, write_result

WORDS = ("cell protein gene expression tumour receptor signal pathway mouse model "
         "patient trial dose response binding membrane").split()


def document(n: int) -> str:
    return " ".join(WORDS[(n * 7 + i) % len(WORDS)] for i in range(40)) + f" note {n}."


def settings(ann_min_rows: int):  # -> ragtune.Settings of the side that runs it
    from ragtune import Settings
    from ragtune.config import RetrievalSettings

    return Settings(retrieval=RetrievalSettings(ann_min_rows=ann_min_rows))


def worker(kb_path: Path, writes: int, out: Path, ann_min_rows: int) -> None:
    """Runs in a process whose ``ragtune`` is one side's: times each write and removal."""
    from ragtune import KnowledgeBase
    from ragtune.testing import FakeEmbedder

    docs = out.parent / f"{out.stem}-docs"
    docs.mkdir(exist_ok=True)
    kb = KnowledgeBase.open(kb_path, settings(ann_min_rows), embedder=FakeEmbedder(dimension=384))
    adds, removes = [], []
    for n in range(writes + 1):  # the first of each: the warm-up (or this side's migration)
        path = docs / f"note{n}.txt"
        path.write_text(document(n), encoding="utf-8")
        start = time.perf_counter()
        report = kb.ingest([path])
        adds.append(time.perf_counter() - start)
        assert report.added == [str(path.resolve())], report.summary()
        start = time.perf_counter()
        kb.remove([str(path)])
        removes.append(time.perf_counter() - start)
    kb.ingest([docs / "note0.txt"])  # one left in, for the check below
    assert kb.verify().ok
    out.write_text(json.dumps({"adds": adds, "removes": removes,
                               "chunks": sum(len(r.chunk_ids) for r in kb.sources())}))


def run_side(src: Path, kb_path: Path, writes: int, out: Path, ann_min_rows: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT / "bench")])}
    subprocess.run([sys.executable, __file__, "--worker", str(kb_path), "--writes", str(writes),
                    "--out", str(out), "--ann-min-rows", str(ann_min_rows)], env=env,
                   check=True)
    return json.loads(out.read_text())


def build(src: Path, kb_path: Path, corpus: Path, ann_min_rows: int) -> None:
    """Ingest ``corpus`` (a file or a folder) with the ``ragtune`` of ``src``."""
    code = ("import sys; from ragtune import KnowledgeBase; from ragtune.testing import "
            "FakeEmbedder; from write_speed import settings; kb = KnowledgeBase.create("
            "sys.argv[1], settings(int(sys.argv[3])), embedder=FakeEmbedder(dimension=384)); "
            "print(kb.ingest([sys.argv[2]]).summary())")
    subprocess.run([sys.executable, "-c", code, str(kb_path), str(corpus), str(ann_min_rows)],
                   check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                       [str(src), str(ROOT / "bench")])})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--ann-min-rows", type=int, default=20_000,
                        help="retrieval.ann_min_rows of both sides (below 8,114: an HNSW graph)")
    parser.add_argument("--copies", type=int, default=1,
                        help="copies of the corpus in the knowledge base")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.writes, args.out, args.ann_min_rows)
    corpus = require(data_dir() / "scifact" / "corpus.jsonl")
    with tempfile.TemporaryDirectory(prefix="write-speed-") as tmp:
        work = Path(tmp)
        archive = work / "baseline.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), args.baseline,
                        "src"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(work / "baseline", filter="data")
        baseline_src = work / "baseline" / "src"
        if args.copies > 1:
            (work / "corpus").mkdir()
            for n in range(args.copies):
                shutil.copy(corpus, work / "corpus" / f"corpus-{n}.jsonl")
            corpus = work / "corpus"
        build(baseline_src, work / "kb", corpus, args.ann_min_rows)
        results = {}
        for side, src in (("baseline", baseline_src), ("this checkout", ROOT / "src")):
            copy = work / f"kb-{side.replace(' ', '-')}"
            shutil.copytree(work / "kb", copy)
            results[side] = run_side(src, copy, args.writes, work / f"{copy.name}.json",
                                     args.ann_min_rows)
    base, new = results["baseline"], results["this checkout"]
    rows = []
    for what in ("adds", "removes"):
        b, n = statistics.median(base[what][1:]), statistics.median(new[what][1:])
        rows.append((what, b, n, n / b))
    print(f"knowledge base: SciFact corpus, {base['chunks']} chunks; baseline {args.baseline}; "
          f"ann_min_rows {args.ann_min_rows}; {args.copies} copies of the corpus; "
          f"median of {args.writes} writes after one warm-up")
    print(f"{'operation':<22} {'baseline s':>11} {'this s':>8} {'ratio':>7}")
    for what, b, n, ratio in rows:
        print(f"{'one document ' + what[:-1]:<22} {b:>11.3f} {n:>8.3f} {ratio:>7.3f}")
    print(f"first write of this checkout (migrates the lexical index): {new['adds'][0]:.3f} s; "
          f"the baseline's first: {base['adds'][0]:.3f} s")
    write_result("write_speed", {"baseline": args.baseline, "results": results,
                                 "ann_min_rows": args.ann_min_rows, "copies": args.copies,
                                 "machine": machine()})


if __name__ == "__main__":
    main()
