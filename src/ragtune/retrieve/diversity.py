"""Maximal marginal relevance (Carbonell & Goldstein 1998) and neighbouring-chunk expansion."""

from __future__ import annotations

import numpy as np


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.7) -> list[int]:
    """Pick ``k`` of the candidates, each time the one maximising
    ``lambda * relevance - (1 - lambda) * max cosine to those already picked``.

    ``relevance`` has shape ``(n,)`` (scaled to [0, 1] here); ``vectors`` ``(n, d)``,
    L2-normalised. Returns candidate indices in pick order.

    Example:
        >>> v = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
        >>> mmr(np.array([1.0, 0.9, 0.5]), v, 2, lambda_=0.5)
        [0, 2]
    """
    n = len(relevance)
    if n == 0 or k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones(n)
    sims = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    picked: list[int] = []
    redundancy = np.full(n, -np.inf)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        score = lambda_ * rel - (1 - lambda_) * penalty
        score[picked] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        redundancy = np.maximum(redundancy, sims[best])
    return picked


def merge_spans(pieces: list[tuple[int, int, str]]) -> tuple[int, int, str]:
    """Join ``(start, end, text)`` pieces of one document, in order, without repeating the
    characters where neighbouring chunks overlap; gaps become a blank line."""
    pieces = sorted(pieces)
    start, end, text = pieces[0]
    for s, e, t in pieces[1:]:
        if e <= end:
            continue
        if s < end:
            text += t[end - s:]
        else:
            text += "\n\n" + t
        end = e
    return start, end, text
