"""Ingest fuzz at full size: hostile files (FIFO, device links, links out of the folder and
in loops, zip and PDF bombs that unpack to 200 MB, truncated and corrupt PDFs, 20 MB files
with one line, wrong encodings, NUL bytes, empty files) ingested by ``ragtune ingest`` into
a knowledge base that already holds SQuAD paragraphs.

The baseline, measured in the same run: the same command ingesting 40 more good files.
Reported: the hostile run's peak resident memory (the kernel's count for the process) and
time against the baseline's, how many paths were reported and whether each once with its
reason, and whether every earlier document is still stored and found.

    python bench/ingest_fuzz.py                   # the fake embedder: parsing and storing
    python bench/ingest_fuzz.py --embedder default  # the bundled embedder as well
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings
from ragtune.testing import register_fakes
from ragtune.testing.hostile import EITHER, make_hostile, run_measured

from _common import RESULTS, data_dir, require, write_result


def squad_files(folder: Path, start: int, count: int) -> list[str]:
    """SQuAD v1.1 dev paragraphs ``start`` to ``start + count`` as text files; returns
    one question per file whose answer lies in it."""
    data = json.loads(require(data_dir() / "squad_v1.1" / "dev-v1.1.json").read_text())["data"]
    paragraphs = [p for a in data for p in a["paragraphs"]][start:start + count]
    folder.mkdir(parents=True)
    for i, p in enumerate(paragraphs):
        (folder / f"p{start + i:04d}.txt").write_text(p["context"])
    return [p["qas"][0]["question"] for p in paragraphs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", choices=["fake", "default"], default="fake")
    parser.add_argument("--huge-mb", type=float, default=20)
    parser.add_argument("--bomb-mb", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    root = RESULTS / "ingest_fuzz"
    shutil.rmtree(root, ignore_errors=True)
    env = dict(os.environ)
    settings = Settings()
    if args.embedder == "fake":
        env.update(PYTHONPATH=register_fakes(root / "fakes"), RAGTUNE_EMBEDDER_BACKEND="fake",
                   RAGTUNE_EMBEDDER_MODEL="fake-hash")
        settings = Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"))
    questions = squad_files(root / "good", 0, 200)
    kb = KnowledgeBase.create(root / "kb", settings)
    kb.ingest([root / "good"])
    stored = {(c.id, c.text) for c in kb.store.scan()}
    found_before = sum(kb.search(q, k=5)[0].chunk.source.endswith(f"p{i:04d}.txt")
                       for i, q in enumerate(questions))

    def ingest(folder: Path):
        command = [sys.executable, "-m", "ragtune", "ingest", "--kb", str(kb.path),
                   str(folder), "--json"]
        return run_measured(command, timeout=args.timeout, env=env)

    squad_files(root / "more", 200, 40)
    baseline = ingest(root / "more")
    expected = make_hostile(root / "hostile", root / "outside", huge_mb=args.huge_mb,
                            bomb_mb=args.bomb_mb)
    hostile = ingest(root / "hostile")
    report = hostile.json() if hostile.returncode is not None else {"failed": []}
    failed = [(Path(f["path"]).name.split(":")[0], f["reason"]) for f in report["failed"]]
    reasons = dict(failed)
    wrong = {n: reasons.get(n) for n, w in expected.items()
             if (w is None and n in reasons) or (w not in (None, EITHER)
                                                 and w not in reasons.get(n, ""))}

    kb = KnowledgeBase.open(kb.path, settings)
    found_after = sum(kb.search(q, k=5)[0].chunk.source.endswith(f"p{i:04d}.txt")
                      for i, q in enumerate(questions))
    result = {
        "embedder": args.embedder, "huge_mb": args.huge_mb, "bomb_mb": args.bomb_mb,
        "hostile_paths": len(expected),
        "expected_reported": sum(w not in (None, EITHER) for w in expected.values()),
        "reported": len(failed), "reported_once": len(failed) == len(reasons),
        "wrong_or_missing_reason": wrong,
        "ingested": {n: n not in reasons for n, w in expected.items() if w in (None, EITHER)},
        "hostile": {"exit": hostile.returncode, "peak_rss_mb": round(hostile.peak_rss_mb),
                    "seconds": round(hostile.seconds, 1),
                    "chunks_embedded": report.get("chunks_embedded")},
        "baseline": {"exit": baseline.returncode, "peak_rss_mb": round(baseline.peak_rss_mb),
                     "seconds": round(baseline.seconds, 1)},
        "peak_rss_ratio": round(hostile.peak_rss_mb / baseline.peak_rss_mb, 2),
        "earlier_chunks_kept": stored <= {(c.id, c.text) for c in kb.store.scan()},
        "found_first_before": found_before, "found_first_after": found_after,
        "verify_ok": kb.verify().ok,
    }
    print(json.dumps(result, indent=2))
    print("wrote", write_result("ingest_fuzz", result))


if __name__ == "__main__":
    main()
