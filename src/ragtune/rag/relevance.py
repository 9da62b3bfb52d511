"""Whether any retrieved chunk is close enough to the question to answer from.

A question about something the knowledge base does not cover still retrieves its k
nearest chunks; a small model then answers from whichever came first. The dense cosine
similarity of the best chunk tells these apart far better than the model does: on SQuAD
questions of the training articles asked of a knowledge base without their article
(``bench/answer_calibration.py``), its AUC was 0.98 against 0.71 for the bundled adapter's
own abstention probability. Below ``retrieval.min_similarity`` an answer abstains without
generating (LlamaIndex's ``SimilarityPostprocessor(similarity_cutoff=...)`` and RAGFlow's
similarity threshold do the same before generation).

Cosine scales differ between embedders, so the default is per embedder, measured on that
validation split; an embedder without one has no default (no threshold).
"""

from __future__ import annotations

from collections.abc import Sequence

from ragtune.types import Hit

__all__ = ["MIN_SIMILARITY", "best_similarity", "min_similarity"]

# embedder name -> the threshold chosen by bench/answer_calibration.py (the lowest false
# abstention ... see BENCHMARKS.md, "Answer quality")
MIN_SIMILARITY: dict[str, float] = {"all-minilm-l6-v2": 0.40}


def min_similarity(setting: float | None, embedder: str) -> float | None:
    """The threshold in force: the setting, else the embedder's default; ``None``: none
    (``-1`` in the setting turns it off)."""
    value = MIN_SIMILARITY.get(embedder.lower()) if setting is None else setting
    return None if value is None or value <= -1 else value


def best_similarity(hits: Sequence[Hit]) -> float | None:
    """The highest dense (cosine) score among ``hits``; ``None`` when none has one
    (lexical retrieval)."""
    scores = [h.dense_score for h in hits if h.dense_score is not None]
    return max(scores) if scores else None
