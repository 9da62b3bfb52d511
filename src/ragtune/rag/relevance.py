"""Whether any retrieved text is close enough to the question to answer from.

A question about something the knowledge base does not cover still retrieves its k
nearest chunks; a small model then answers from whichever came first. The dense cosine
similarity of the retrieved text tells these apart far better than the model does: on
SQuAD questions of the training articles asked of a knowledge base without their article
(``bench/answer_calibration.py``), its AUC was 0.98 against 0.71 for the bundled adapter's
own abstention probability. Below ``retrieval.min_similarity`` an answer abstains without
generating (LlamaIndex's ``SimilarityPostprocessor(similarity_cutoff=...)`` and RAGFlow's
similarity threshold do the same before generation).

Two things keep the threshold from turning away questions the sources do answer:

- the similarity is the best of each chunk's and of each sentence of a text chunk: a short
  question is far from a long chunk that mixes a heading, prose and a code block even when
  one of its sentences answers it ("How do I start the server?": 0.23 to the chunk, 0.59 to
  the sentence that says how). Sentences are embedded only when no chunk reaches the
  threshold.
- a question whose every term (question words aside) is in one retrieved chunk is on topic,
  whatever its similarity: embedders know little of acronyms, product names and code
  identifiers ("What is RAFT?"), which BM25 matches exactly.

Cosine scales differ between embedders, so the default is per embedder, measured on that
validation split and stored in ``min_similarity.json`` beside this module (written by
``bench/answer_calibration.py --write``); an embedder without one has no default.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ragtune.documents.chunking import split_sentences
from ragtune.index.tokenize import tokenize
from ragtune.models.protocol import Embedder
from ragtune.rag.compress import similarities
from ragtune.types import Hit

__all__ = ["Relevance", "best_similarity", "covering_source", "default_min_similarity",
           "min_similarity", "relevance", "sentence_similarity"]

# words that ask rather than say what is asked about: not looked for in the sources
QUESTION_WORDS = (
    "what which who whom whose when where why how do does did can could would should "
    "i you we many much "
    "什么 哪 哪个 哪些 哪里 哪一 谁 怎么 怎样 如何 为什么 多少 几 吗 呢 何 何时"
)

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


def sentence_similarity(question: str, hits: Sequence[Hit], embedder: Embedder,
                        ) -> float | None:
    """The highest cosine similarity between ``question`` and one sentence of a text chunk
    among ``hits``; ``None`` when there is no such sentence."""
    sentences = [h.chunk.text[a:b] for h in hits if h.chunk.kind == "text"
                 for a, b in split_sentences(h.chunk.text)]
    return float(np.max(similarities(question, sentences, embedder))) if sentences else None


@cache
def _question_words() -> tuple[frozenset[str], tuple[str, ...]]:
    """English question words as BM25 terms; Chinese ones as text, since jieba joins them
    with their neighbours (几天, 多少钱)."""
    words = QUESTION_WORDS.split()
    return (frozenset(tokenize(" ".join(w for w in words if w.isascii()))),
            tuple(w for w in words if not w.isascii()))


def covering_source(question: str, hits: Sequence[Hit]) -> int | None:
    """The number (1-based) of the first hit whose indexed text (a table's header and
    title included, as BM25 reads it) holds every BM25 term of ``question`` but its
    question words and single Latin letters (the s of "RAFT's"); ``None`` when none does
    or nothing is left. Chinese question words are dropped with the jieba word that holds
    them (几天, 多少钱)."""
    english, chinese = _question_words()
    terms = {t for t in tokenize(question) if t not in english
             and (len(t) > 1 if t.isascii() else not any(w in t for w in chinese))}
    if not terms:
        return None
    return next((n for n, h in enumerate(hits, 1)
                 if terms <= set(tokenize(h.chunk.index_text))), None)


@dataclass(frozen=True)
class Relevance:
    """What the threshold was compared with: ``similarity`` (the best of the chunks' and,
    where measured, their sentences'; ``None``: no dense score) and ``covered`` (the hit
    holding every term of the question, if one does)."""

    similarity: float | None
    covered: int | None = None

    def passes(self, threshold: float | None) -> bool:
        return (threshold is None or self.similarity is None or self.covered is not None
                or self.similarity >= threshold)


def relevance(question: str, hits: Sequence[Hit], embedder: Embedder | None,
              threshold: float | None = None) -> Relevance:
    """How close ``hits`` are to ``question``, measured only as far as ``threshold``
    needs: the chunks' dense scores, then every term of the question in one chunk, then
    each sentence's similarity (with ``embedder``). ``threshold=None`` measures all (for
    calibration); hits without dense scores (lexical search) are not measured."""
    chunk = best_similarity(hits)
    if chunk is None or (threshold is not None and chunk >= threshold):
        return Relevance(chunk)
    covered = covering_source(question, hits)
    if covered is not None and threshold is not None:
        return Relevance(chunk, covered)
    sentence = sentence_similarity(question, hits, embedder) if embedder is not None else None
    return Relevance(chunk if sentence is None else max(chunk, sentence), covered)
