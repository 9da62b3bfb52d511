"""Ranking metrics (pure functions over ranked ids and relevance judgements).

Definitions follow trec_eval / pytrec_eval as used by BEIR (Thakur et al. 2021):
nDCG@k with gains equal to the graded relevance and log2 discounts (Järvelin & Kekäläinen
2002), the ideal ranking computed from all judged relevant documents; recall@k is the
share of relevant documents retrieved in the top k; MRR@k the reciprocal rank of the first
relevant document.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k of ``ranked`` ids given ``{id: grade}`` (grades <= 0 count as not relevant)."""
    gains = [g for g in relevance.values() if g > 0]
    if not gains:
        return 0.0
    dcg = sum(relevance.get(doc, 0) / math.log2(i + 2)
              for i, doc in enumerate(ranked[:k]) if relevance.get(doc, 0) > 0)
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(gains, reverse=True)[:k]))
    return dcg / ideal


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, g in relevance.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevance.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0
