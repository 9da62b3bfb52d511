"""Which languages a knowledge base is written in, from a sample of its chunks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ragtune.documents.language import detect_language

SAMPLE = 500  # chunks looked at, spread evenly over the knowledge base
MIN_SHARE = 0.2  # a language counts when at least this share of the sample is in it


def corpus_languages(texts: Sequence[str], *, min_share: float = MIN_SHARE) -> tuple[str, ...]:
    """The languages (as :func:`~ragtune.documents.language.detect_language` names them)
    of at least ``min_share`` of ``texts``, most frequent first; ``()`` for no text.

    Example:
        >>> corpus_languages(["Net sales rose.", "Services grew.", "净销售额增长。"])
        ('en', 'zh')
        >>> corpus_languages(["Net sales rose."] * 9 + ["净销售额增长。"])
        ('en',)
    """
    counts = Counter(detect_language(t) for t in texts if t.strip())
    total = sum(counts.values())
    return tuple(lang for lang, n in counts.most_common() if n >= min_share * total)
