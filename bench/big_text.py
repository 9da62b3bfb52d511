"""Write a large plain-text file of real, varied prose for ingest memory and time checks:
SQuAD v1.1 dev contexts, SciFact abstracts and legal clauses, one paragraph each, shuffled
again for every round until the file reaches the size asked (no line repeated in place).

    python bench/big_text.py bench/results/big50.txt 50
    /usr/bin/time -v ragtune ingest --kb bench/results/big-kb bench/results/big50.txt
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from _common import data_dir, require


def paragraphs() -> list[str]:
    root = data_dir()
    squad = json.loads(require(root / "squad_v1.1" / "dev-v1.1.json").read_text())["data"]
    texts = [p["context"] for a in squad for p in a["paragraphs"]]
    texts += [json.loads(line)["text"] for line in
              require(root / "scifact" / "corpus.jsonl").read_text().splitlines() if line.strip()]
    legal = json.loads(require(root / "legal_summarization" / "all_v1.json").read_text())
    texts += [v["original_text"] for v in legal.values()]
    return [t.strip() for t in texts if t.strip()]


def chosen(megabytes: float) -> list[str]:
    """Paragraphs, shuffled again each round, until they reach ``megabytes`` (UTF-8)."""
    distinct = paragraphs()
    target = int(megabytes * 1_000_000)
    out: list[str] = []
    size = 0
    rnd = random.Random(0)
    while size < target:
        order = distinct[:]
        rnd.shuffle(order)
        for p in order:
            out.append(p)
            size += len(p.encode()) + 2
            if size >= target:
                break
    return out


def main() -> None:
    out, megabytes = Path(sys.argv[1]), float(sys.argv[2])
    texts = chosen(megabytes)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(texts) + "\n")
    print(f"{out}: {out.stat().st_size:,} bytes, {len(texts):,} paragraphs "
          f"({len(set(texts)):,} distinct)")


if __name__ == "__main__":
    main()
