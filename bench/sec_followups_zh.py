"""Chinese follow-up questions on the three shared SEC 10-Q filings: the rules, then search.

The pairs are written by hand (``bench/sec_followups_zh.json``, from the English questions
of ``bench/sec_questions.json``): a conversation opens with a standalone Chinese question
("苹果公司截至2022年6月25日的三个月总净销售额是多少？") and goes on with follow-ups ("那九个月呢？",
"它的毛利是多少？").

1. Rules (``ragtune.rag.followup.rewrite``, no generator): how many follow-ups they decide,
   and how many of their standalone forms hold every word the pair needs (company, period,
   figure).
2. Top-5 hybrid search over the filings (tables, the multilingual embedder, as a knowledge
   base with Chinese questions uses): a hit is a chunk of the right filing that holds the
   figure; follow-ups as asked, and rewritten. The opening questions are shown beside them.

Usage: python bench/sec_followups_zh.py [--k 5] [--rules-only]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from ragtune import KnowledgeBase
from ragtune.rag.followup import rewrite

from _common import ROOT, data_dir, require, write_result

PAIRS = ROOT / "bench" / "sec_followups_zh.json"


def followups(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every follow-up with its conversation's opening question and filing."""
    return [{**f, "first": c["first"], "filing": c["filing"]}
            for c in spec["conversations"] for f in c["followups"]]


def hit(kb: KnowledgeBase, question: str, filing: str, figure: str, k: int) -> bool:
    return any(filing in Path(h.chunk.source).name and figure in h.chunk.text
               for h in kb.search(question, k=k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--rules-only", action="store_true")
    args = parser.parse_args()
    spec = json.loads(PAIRS.read_text())
    pairs = followups(spec)
    reads = [rewrite(p["q"], [p["first"]]) for p in pairs]
    decided = [r.rule not in ("kept", "generator") for r in reads]
    complete = [all(w in r.question for w in p["needs"]) for p, r in zip(pairs, reads,
                                                                         strict=True)]
    print(f"1. rules: {sum(decided)} / {len(pairs)} follow-ups decided, "
          f"{sum(complete)} / {len(pairs)} standalone forms hold company, period and figure")
    for p, r, ok in zip(pairs, reads, complete, strict=True):
        print(f"   {'ok ' if ok else 'no '} {r.rule:10} {p['q']} -> {r.question}")
    result: dict[str, Any] = {"k": args.k, "followups": len(pairs), "decided": sum(decided),
                              "complete": sum(complete),
                              "rewrites": [r.question for r in reads]}
    if not args.rules_only:
        folder = require(data_dir() / "sec10q_pdfs")
        with tempfile.TemporaryDirectory() as tmp:
            kb = KnowledgeBase.create(Path(tmp) / "kb", embedder="multilingual-e5-small")
            kb.ingest([folder])
            firsts = [hit(kb, c["first"], c["filing"], c["figure"], args.k)
                      for c in spec["conversations"]]
            asked = [hit(kb, p["q"], p["filing"], p["figure"], args.k) for p in pairs]
            rewritten = [hit(kb, r.question, p["filing"], p["figure"], args.k)
                         for p, r in zip(pairs, reads, strict=True)]
            kb.close()
        n = len(pairs)
        print(f"\n2. top-{args.k} hit rate, multilingual-e5-small, hybrid, tables")
        print(f"   opening questions      {sum(firsts)} / {len(firsts)}")
        print(f"   follow-ups as asked    {sum(asked)} / {n} = {sum(asked) / n:.2f}")
        print(f"   follow-ups rewritten   {sum(rewritten)} / {n} = {sum(rewritten) / n:.2f}")
        result.update(firsts=[int(x) for x in firsts], asked=[int(x) for x in asked],
                      rewritten=[int(x) for x in rewritten])
    print(f"\nwrote {write_result('sec_followups_zh', result)}")


if __name__ == "__main__":
    main()
