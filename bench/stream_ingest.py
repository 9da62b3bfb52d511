"""Peak memory of ingesting one large plain-text, Markdown and JSON Lines file, read whole
against streamed, with the same real prose (``big_text.py``'s paragraphs).

Each ingest runs in a process of its own into a new knowledge base with the fake embedder
(a bag of hashed words), so that the figure is reading, chunking and storing, not a
model; "whole" raises the streaming threshold over the file's size. The same run checks
that both store the same chunk ids.

    python bench/stream_ingest.py --mb 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import big_text

from _common import RESULTS, machine

CHILD = """
import hashlib, json, resource, sys, time
from pathlib import Path
from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings
from ragtune.documents import streaming
from ragtune.testing import register_fakes

path, kb_dir, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
register_fakes(kb_dir.parent / "fakes")
if mode == "whole":
    streaming.STREAM_FROM_BYTES = 1 << 40
settings = Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"))
t = time.perf_counter()
kb = KnowledgeBase.create(kb_dir, settings)
report = kb.ingest([path])
seconds = time.perf_counter() - t
record = kb.sources()[0]
print(json.dumps({"failed": report.failed, "chunks": len(record.chunk_ids),
                  "documents": record.documents, "seconds": seconds,
                  "ids": hashlib.sha256("".join(record.chunk_ids).encode()).hexdigest(),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write(folder: Path, megabytes: float) -> list[Path]:
    """The same paragraphs as plain text, as Markdown (a heading every 8 paragraphs) and
    as JSON Lines (one record each)."""
    chosen = big_text.chosen(megabytes)
    folder.mkdir(parents=True, exist_ok=True)
    txt, md, jsonl = folder / "big.txt", folder / "big.md", folder / "big.jsonl"
    txt.write_text("\n\n".join(chosen) + "\n")
    md.write_text("# Big\n\n" + "\n\n".join(
        (f"## Part {i // 8}\n\n" if i % 8 == 0 else "") + p for i, p in enumerate(chosen)) + "\n")
    jsonl.write_text("\n".join(json.dumps({"title": f"Paragraph {i}", "text": p})
                               for i, p in enumerate(chosen)) + "\n")
    return [txt, md, jsonl]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20)
    args = parser.parse_args()
    work = RESULTS / "stream-ingest"
    files = write(work / "files", args.mb)
    rows = []
    for path in files:
        for mode in ("whole", "streamed"):
            kb = work / f"kb-{path.suffix[1:]}-{mode}"
            subprocess.run(["rm", "-rf", str(kb)], check=True)
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(kb), mode],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result.update(file=path.name, mode=mode, mb=path.stat().st_size / 1e6,
                          wall_s=time.perf_counter() - t)
            rows.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "ids"}), flush=True)
    for path in files:
        whole, streamed = (r for r in rows if r["file"] == path.name)
        print(f"{path.name}: {whole['mb']:.1f} MB, {whole['chunks']:,} chunks, "
              f"peak {whole['peak_mb']:.0f} MB whole -> {streamed['peak_mb']:.0f} MB streamed "
              f"({streamed['peak_mb'] / whole['peak_mb']:.2f}x), same ids: "
              f"{whole['ids'] == streamed['ids']}")
    (RESULTS / "stream_ingest.json").write_text(json.dumps(
        {"machine": machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
