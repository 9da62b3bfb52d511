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
validation split and stored in ``min_similarity.json`` beside this module (written by
``bench/answer_calibration.py --write``); an embedder without one has no default.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from ragtune.types import Hit

__all__ = ["best_similarity", "default_min_similarity", "min_similarity"]

DEFAULTS = Path(__file__).with_name("min_similarity.json")


@cache
def _defaults() -> dict[str, float]:
    data = json.loads(DEFAULTS.read_text(encoding="utf-8")) if DEFAULTS.exists() else {}
    return {name.lower(): float(entry["min_similarity"]) for name, entry in data.items()}


def default_min_similarity(embedder: str) -> float | None:
    """The threshold measured for ``embedder`` (a registry name), if one was."""
    return _defaults().get(embedder.lower())


def min_similarity(setting: float | None, embedder: str) -> float | None:
    """The threshold in force: the setting, else the embedder's default; ``None``: none
    (``-1`` in the setting turns it off)."""
    value = default_min_similarity(embedder) if setting is None else setting
    return None if value is None or value <= -1 else value


def best_similarity(hits: Sequence[Hit]) -> float | None:
    """The highest dense (cosine) score among ``hits``; ``None`` when none has one
    (lexical retrieval)."""
    scores = [h.dense_score for h in hits if h.dense_score is not None]
    return max(scores) if scores else None
