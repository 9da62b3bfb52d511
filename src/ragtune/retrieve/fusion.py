"""Rank fusion of several ranked lists (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60,
                           weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))``, ranks from 1.

    Cormack, Clarke & Büttcher (2009), "Reciprocal Rank Fusion outperforms Condorcet and
    individual Rank Learning Methods", SIGIR. Ties are broken by first appearance.

    Example:
        >>> reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60)[0][0]
        'b'
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def min_max(scores: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; a constant list maps to all ones."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def max_scaled(scores: Sequence[float]) -> list[float]:
    """Divide by the largest score (scores are assumed non-negative)."""
    top = max(scores, default=0.0)
    return [s / top for s in scores] if top > 0 else [0.0] * len(scores)


def weighted_fusion(results: Sequence[Sequence[tuple[str, float]]],
                    weights: Sequence[float], normalize: str = "minmax",
                    ) -> list[tuple[str, float]]:
    """Weighted sum of each list's normalised scores; a list missing a doc adds 0.

    ``normalize`` is ``"minmax"`` (to [0, 1] within the list) or ``"max"`` (divide by the
    list's top score, keeping how far below the best each candidate is).
    """
    if len(weights) != len(results):
        raise ValueError(f"{len(results)} result lists but {len(weights)} weights")
    scale = {"minmax": min_max, "max": max_scaled}.get(normalize)
    if scale is None:
        raise ValueError(f"unknown normalisation {normalize!r}; valid choices: minmax, max")
    scores: dict[str, float] = {}
    for result, weight in zip(results, weights, strict=True):
        for (doc, _), norm in zip(result, scale([s for _, s in result]), strict=True):
            scores[doc] = scores.get(doc, 0.0) + weight * norm
    return sorted(scores.items(), key=lambda kv: -kv[1])


def zscore_fusion(ids: Sequence[str], scores: Sequence[Sequence[float]],
                  moments: Sequence[tuple[float, float]], weights: Sequence[float],
                  ) -> list[tuple[str, float]]:
    """``sum_i w_i * (s_i - mean_i) / std_i`` for every candidate, best first.

    ``scores[i][j]`` is list ``i``'s score for ``ids[j]`` (every candidate scored by every
    list), and ``moments[i]`` the mean and standard deviation of list ``i``'s scores over
    the whole collection, so a score counts by how unusual it is for its scorer rather
    than by where the top candidate happened to land. A list with no spread adds 0.

    Example:
        >>> zscore_fusion(["a", "b"], [[0.9, 0.5], [1.0, 3.0]], [(0.5, 0.2), (0.0, 1.0)],
        ...               [0.5, 0.5])[0][0]
        'b'
    """
    if not len(scores) == len(moments) == len(weights):
        raise ValueError(f"{len(scores)} score lists, {len(moments)} moments, "
                         f"{len(weights)} weights")
    total = np.zeros(len(ids))
    for column, (mean, std), weight in zip(scores, moments, weights, strict=True):
        if len(column) != len(ids):
            raise ValueError(f"{len(column)} scores for {len(ids)} candidates")
        if std > 0 and weight:
            total += weight * (np.asarray(column, dtype=np.float64) - mean) / std
    order = np.argsort(-total, kind="stable")
    return [(ids[i], float(total[i])) for i in order]
