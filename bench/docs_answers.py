"""How `ragtune ask` answers a user's questions about ragtune's own documentation.

The knowledge base is the one ``make demo`` builds from ``docs/`` (built here when it is
missing), every setting at its default. The questions are ``docs_questions.json``: 30
written by hand from the docs as a new user would ask them, each with short accepted
answers found verbatim in the doc that answers it, and 10 off-topic ones the docs cannot
answer. Nothing here chose a threshold or a prompt: the set only tests them.

- correct: the answer, without its ``[n]`` markers, contains an accepted answer as whole
  words (case-insensitive);
- shown: a source the model was shown contains one (none is shown when the relevance
  gate abstains before generating);
- abstained: on the docs questions, a false abstention; on the off-topic ones, right.

    python bench/docs_answers.py [--name NAME] [--kb .ragtune/demo-kb]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

from answer_quality import cpu_flags
from ragtune.rag.citations import strip_markers

from _common import RESULTS, ROOT, write_result

QUESTIONS = Path(__file__).with_name("docs_questions.json")


def contains(text: str, accepted: str) -> bool:
    """``accepted`` in ``text`` as whole words: "3" is not found in "30" or "[3]"."""
    pattern = re.escape(accepted.lower())
    if accepted[:1].isalnum():
        pattern = r"(?<!\w)" + pattern
    if accepted[-1:].isalnum():
        pattern += r"(?!\w)"
    return re.search(pattern, strip_markers(text).lower()) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", default=str(ROOT / ".ragtune" / "demo-kb"))
    parser.add_argument("--name", default="default")
    args = parser.parse_args()
    from ragtune import KnowledgeBase

    if not (Path(args.kb) / "manifest.json").exists():
        with KnowledgeBase.create(args.kb) as kb:
            print(kb.ingest([ROOT / "docs"]).summary())
    items = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    rows: list[dict[str, Any]] = []
    with KnowledgeBase.open(args.kb) as kb:
        kb.ask("How do I install the bundled models?")  # models loaded before the clock
        for item in items:
            start = time.perf_counter()
            answer = kb.ask(item["question"])
            seconds = time.perf_counter() - start
            rows.append({
                "id": item["id"], "question": item["question"], "answer": answer.text,
                "abstained": answer.abstained, "similarity": answer.similarity,
                "correct": any(contains(answer.text, a) for a in item["answers"]),
                "shown": any(contains(c.text, a) for c in answer.context
                             for a in item["answers"]),
                "cited": [c.chunk.source.rsplit("/", 1)[-1] for c in answer.citations],
                "seconds": seconds})
            print(f"{item['id']} {'abstained' if answer.abstained else answer.text!r}")
    docs = [r for r, i in zip(rows, items, strict=True) if i["answers"]]
    off = [r for r, i in zip(rows, items, strict=True) if not i["answers"]]
    answered = [r for r in rows if not r["abstained"]]
    summary = {
        "docs_questions": len(docs), "off_topic": len(off),
        "correct": sum(r["correct"] for r in docs) / len(docs),
        "shown": sum(r["shown"] for r in docs) / len(docs),
        "abstained_docs": sum(r["abstained"] for r in docs) / len(docs),
        "abstained_off_topic": sum(r["abstained"] for r in off) / len(off),
        "p50_s": statistics.median(r["seconds"] for r in rows),
        "p50_s_answered": statistics.median(r["seconds"] for r in answered) if answered else None,
    }
    print(json.dumps(summary, indent=1))
    path = write_result(f"docs_answers_{args.name}", {"cpu": cpu_flags(), "summary": summary,
                                                      "rows": rows})
    print(f"written {path.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
