"""Shorter prompts: each retrieved chunk cut to the sentences that bear on the question.

The prompt pass is most of a local answer's time, so showing fewer tokens is the cheapest
speed-up there is. :func:`select_sentences` keeps, of each text chunk, the ``n`` sentences
whose embeddings are closest to the question's, in their own order (sentences that were
not next to each other are joined with " … "). Tables stay whole: a row means nothing
without its header. ``bench/context_curve.py`` measures what this costs in answer quality.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ragtune.documents.chunking import split_sentences
from ragtune.models.protocol import Embedder, embed_queries
from ragtune.types import Hit

__all__ = ["select_sentences", "similarities"]

GAP = " … "


def similarities(question: str, texts: list[str], embedder: Embedder) -> np.ndarray:
    """The cosine similarity of ``question`` (embedded as a query) to each of ``texts``."""
    return np.asarray(embedder.embed(texts)) @ embed_queries(embedder, [question])[0]


def select_sentences(question: str, hits: list[Hit], n: int, embedder: Embedder) -> list[Hit]:
    """``hits`` with each text chunk cut to its ``n`` sentences nearest the question."""
    spans = [split_sentences(h.chunk.text) if h.chunk.kind == "text" else [] for h in hits]
    long = [i for i, s in enumerate(spans) if len(s) > n]
    if n < 1 or not long:
        return hits
    scores = similarities(question, [hits[i].chunk.text[a:b] for i in long for a, b in spans[i]],
                          embedder)
    out = list(hits)
    at = 0
    for i in long:
        mine = scores[at:at + len(spans[i])]
        at += len(spans[i])
        keep = sorted(np.argsort(-mine, kind="stable")[:n].tolist())
        text, parts, last = hits[i].chunk.text, [], -1
        for j in keep:
            a, b = spans[i][j]
            parts.append(("" if last < 0 else " " if j == last + 1 else GAP) + text[a:b])
            last = j
        out[i] = replace(hits[i], chunk=replace(hits[i].chunk, text="".join(parts)))
    return out
