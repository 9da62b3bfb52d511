"""``ragtune profile``: measure what can be measured instead of asking.

From a knowledge base: its size and how often its sources changed (from ``history.jsonl``);
from training data: how many labelled examples exist; from sample questions: how much of
their wording the documents share (the share of a question's BM25 terms found in the best
lexical passage, averaged). The result is a :class:`Profile` with those fields marked
measured, and the facts behind them.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.advise.profile import Profile, change_level
from ragtune.errors import DataError
from ragtune.index.sources import read_history
from ragtune.index.tokenize import tokenize

DAY_S = 86_400.0
OVERLAP_SAMPLE = 200  # questions scored for overlap; enough for a stable mean


@dataclass(frozen=True)
class Measured:
    profile: Profile
    facts: dict[str, Any]


def change_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """How often the sources changed: ingests after the first that added, updated or removed.

    ``median_days`` is the median gap between consecutive changes (``None`` with fewer than
    two changes, since a first ingest says nothing about the rate).
    """
    changes = [e for e in history if e.get("operation") in ("ingest", "remove")]
    times = sorted(float(e["time"]) for e in changes if "time" in e)
    gaps = [(b - a) / DAY_S for a, b in zip(times, times[1:], strict=False)]
    updated = sum(int(e.get("updated", 0)) + int(e.get("removed", 0)) for e in changes[1:])
    added = sum(int(e.get("added", 0)) for e in changes[1:])
    return {"changes": len(changes), "span_days": (times[-1] - times[0]) / DAY_S if times
            else 0.0, "median_days": statistics.median(gaps) if gaps else None,
            "sources_updated_or_removed": updated, "sources_added_later": added}


def count_labelled(paths: Sequence[str | Path]) -> int:
    """Examples in a prepared folder, training files (any `tune prepare` format) or QA files."""
    from ragtune.evaluate.datasets import load_qa
    from ragtune.tune.data import load_prepared, read_records

    total = 0
    for path in map(Path, paths):
        if path.is_dir():
            train, held_out, _ = load_prepared(path)
            total += len(train) + len(held_out)
            continue
        try:
            examples, _ = read_records([path])
            total += len(examples)
        except DataError as as_training:
            try:
                total += len(load_qa(path).items)
            except DataError:
                raise as_training from None
    return total


def question_overlap(kb: Any, questions: Sequence[str]) -> float | None:
    """Mean share of each question's terms that occur in its best lexical passage."""
    shares = []
    for q in questions[:OVERLAP_SAMPLE]:
        terms = set(tokenize(q))
        if not terms:
            continue
        hits = kb.search(q, k=1, mode="lexical")
        found = set(tokenize(hits[0].chunk.text)) if hits else set()
        shares.append(len(terms & found) / len(terms))
    return sum(shares) / len(shares) if shares else None


def measure(kb_path: str | Path | None = None, *, data: Sequence[str | Path] = (),
            questions: str | Path | None = None) -> Measured:
    """A profile of what the knowledge base, the training data and the questions show."""
    values: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    kb = None
    if kb_path is not None:
        from ragtune.knowledge_base import KnowledgeBase

        kb = KnowledgeBase.open(kb_path)
        sources = kb.sources()
        history = change_history(read_history(kb.path))
        facts["knowledge_base"] = {
            "path": str(kb.path), "sources": len(sources),
            "chunks": sum(len(s.chunk_ids) for s in sources),
            "bytes": sum(s.size for s in sources), "version": kb.version, **history}
        if history["median_days"] is not None:
            values["change"] = change_level(history["median_days"])
    if data:
        values["labelled"] = facts["labelled"] = count_labelled(data)
    if questions is not None:
        from ragtune.evaluate.datasets import load_qa

        items = load_qa(questions).items
        facts["questions"] = {"path": str(questions), "count": len(items)}
        if kb is not None:
            overlap = question_overlap(kb, [i.question for i in items])
            if overlap is not None:
                values["question_overlap"] = round(overlap, 3)
                facts["questions"]["scored"] = min(len(items), OVERLAP_SAMPLE)
    if kb is not None:
        kb.close()
    measured = [k for k in values]
    if kb_path is not None:
        measured.append("kb")  # the knowledge base exists: the roadmap's first step is done
    return Measured(Profile.from_mapping({**values, "measured": measured}), facts)
