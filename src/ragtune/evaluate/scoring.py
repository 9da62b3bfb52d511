"""Per-answer scores, summaries and paired bootstrap intervals.

- ``em``, ``f1``: SQuAD exact match and token F1 (character-level for Chinese), best over
  the gold answers; 0 for an answerable question the arm declined.
- ``rouge_l``: ROUGE-L F-measure (longest common subsequence of tokens).
- ``grounded``: how much of the answer its retrieved context supports (the citation
  checker's support, see :class:`ragtune.pipelines.judge.Judge`); undefined without context.
- ``citation_precision``: share of the answer's citations that point at the gold source;
  ``citation_recall``: whether the gold source is among them (both undefined without a
  gold source, or without citations for precision).
- ``abstain_right``: on an unanswerable question, 1 when the arm declined;
  ``abstain_wrong``: on an answerable one, 1 when it declined.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.evaluate.datasets import QAItem
from ragtune.evaluate.metrics import exact_match, final_answer, rouge_l, token_f1
from ragtune.pipelines.judge import is_refusal
from ragtune.rag.citations import strip_markers

__all__ = ["METRICS", "gold_match", "paired_bootstrap", "percentile", "score_answer"]

METRICS = ("em", "f1", "rouge_l", "grounded", "citation_precision", "citation_recall",
           "abstain_right", "abstain_wrong")


def gold_match(item: QAItem, chunk_id: str, source: str) -> bool:
    """Whether a chunk (its id and source path) is the item's gold source."""
    if chunk_id and chunk_id in item.chunk_ids:
        return True
    if not item.source:
        return False
    path = Path(source)
    return item.source in (source, path.name, path.stem) or source.endswith(item.source)


def score_answer(item: QAItem, record: dict[str, Any],
                 support: Callable[[str, Sequence[str]], float] | None = None,
                 ) -> dict[str, float | None]:
    """Scores of one recorded answer (see :mod:`ragtune.evaluate.harness` for the record)."""
    # a quote-style answer's last "Answer:" line, without its [n] markers
    text = strip_markers(final_answer(record["answer"]))
    declined = bool(record.get("abstained")) or is_refusal(text)
    scores: dict[str, float | None] = dict.fromkeys(METRICS)
    if item.answerable:
        scores["em"] = 0.0 if declined else exact_match(text, item.answers)
        scores["f1"] = 0.0 if declined else token_f1(text, item.answers)
        scores["rouge_l"] = 0.0 if declined else rouge_l(text, item.answers)
        scores["abstain_wrong"] = float(declined)
    else:
        scores["abstain_right"] = float(declined)
    context = record.get("context") or []
    if support is not None and context and not declined:
        scores["grounded"] = support(text, context)
    cited = record.get("citations") or []
    if item.source or item.chunk_ids:
        hits = [gold_match(item, c.get("id", ""), c.get("source", "")) for c in cited]
        if hits:
            scores["citation_precision"] = sum(hits) / len(hits)
        if item.answerable and context:
            scores["citation_recall"] = float(any(hits))
    return scores


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def paired_bootstrap(a: Sequence[float | None], b: Sequence[float | None],
                     samples: int = 2000, seed: int = 0) -> dict[str, float] | None:
    """Mean of ``a - b`` over the questions where both are defined, with the 2.5th and
    97.5th percentiles of that mean over ``samples`` resamples of the questions."""
    pairs = np.array([(x, y) for x, y in zip(a, b, strict=True)
                      if x is not None and y is not None], dtype=np.float64)
    if len(pairs) == 0:
        return None
    diff = pairs[:, 0] - pairs[:, 1]
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    return {"diff": float(diff.mean()), "low": float(np.percentile(means, 2.5)),
            "high": float(np.percentile(means, 97.5)), "n": int(len(diff))}
