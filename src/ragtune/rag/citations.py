"""Citations: which source each answer sentence cites, and whether that source supports it.

A sentence's citations are the ``[n]`` markers the model wrote; a sentence without a
marker is attributed to the source that supports it best. Support of a sentence by a
chunk combines

* lexical support: the mean of the share of the sentence's BM25 terms (stemmed, stopwords
  dropped) found in the chunk and the share of its term bigrams found there (word order
  matters: "removed from the knowledge base" is not "the knowledge base removed"), and
* semantic support: the best cosine similarity between the sentence's embedding and the
  embeddings of the chunk's sentences (when an embedder is given),

as ``0.5 * lexical + 0.5 * semantic`` (lexical alone without an embedder). A citation is
*supported* when every sentence citing it reaches ``threshold``. This is a heuristic: it
catches answers that drift from their sources, not every contradiction that reuses the
source's words (that needs an entailment model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ragtune.documents.chunking import split_sentences
from ragtune.index.tokenize import tokenize
from ragtune.models.protocol import Embedder
from ragtune.rag.injection import suspicious
from ragtune.types import Chunk, Citation, Hit

THRESHOLD = 0.6
_MARKER = re.compile(r"[\[【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]】]")
MARKER = _MARKER  # an [n] (or 【n】, [1, 2]) marker; group 1 holds the numbers
# a sentence whose best support is below this, with no marker, is left unattributed
_ATTRIBUTION_FLOOR = 0.15


def strip_markers(text: str) -> str:
    """``text`` without its ``[n]`` markers (for scoring an answer against gold text)."""
    return " ".join(_MARKER.sub(" ", text).split())


@dataclass(frozen=True)
class SentenceSupport:
    sentence: str
    cited: tuple[int, ...]  # source numbers (1-based)
    marked: bool
    support: dict[int, float]  # source number -> support score


def lexical_support(sentence: str, chunk_text: str) -> float:
    """Mean of term recall and term-bigram recall of the sentence in the chunk, in [0, 1]."""
    terms = tokenize(sentence)
    if not terms:
        return 0.0
    chunk_terms = tokenize(chunk_text)
    unigram = len(set(terms) & set(chunk_terms)) / len(set(terms))
    bigrams = set(zip(terms, terms[1:], strict=False))
    if not bigrams:
        return unigram
    bigram = len(bigrams & set(zip(chunk_terms, chunk_terms[1:], strict=False))) / len(bigrams)
    return 0.5 * unigram + 0.5 * bigram


def semantic_support(sentences: list[str], chunks: list[str], embedder: Embedder) -> np.ndarray:
    """``(len(sentences), len(chunks))``: best cosine of each sentence to a chunk sentence."""
    pieces = [[c[s:e] for s, e in split_sentences(c)] or [c] for c in chunks]
    flat = [p for ps in pieces for p in ps]
    vectors = embedder.embed([*sentences, *flat])
    sims = vectors[: len(sentences)] @ vectors[len(sentences):].T
    out = np.zeros((len(sentences), len(chunks)), dtype=np.float32)
    start = 0
    for j, ps in enumerate(pieces):
        out[:, j] = sims[:, start:start + len(ps)].max(axis=1)
        start += len(ps)
    return np.clip(out, 0.0, 1.0)


def sentence_spans(answer: str) -> list[tuple[int, int]]:
    """Spans of the answer's sentences; a piece that is only markers ("... year. [1]")
    joins the sentence before it, since that is the sentence it cites."""
    out: list[tuple[int, int]] = []
    for s, e in split_sentences(answer):
        if out and not re.search(r"\w", _MARKER.sub("", answer[s:e])):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def answer_sentences(answer: str) -> list[str]:
    """Sentences of the answer (see :func:`sentence_spans`)."""
    return [answer[s:e] for s, e in sentence_spans(answer)]


_END = re.compile(r"[\s.。!！?？;；:：]*$")


def inline(answer: str, analysis: list[SentenceSupport], threshold: float = THRESHOLD,
           strict: bool = False, mark: bool = True) -> tuple[str, list[str]]:
    """The answer with the ``[n]`` of its supporting source at the end of every sentence
    that has none (unless not ``mark``), and the sentences that no source supports (with
    ``strict``, dropped from the text).

    A sentence without a marker gets the source it was attributed to when that source's
    support reaches ``threshold``. A sentence is unsupported when no source reaches it; a
    marked sentence whose own source does not while another does gets that source's
    marker instead (small models often copy from one source and cite its neighbour).
    Sentences without words (list bullets) are left as they are; with no analysis at all
    (no sources), every sentence is unsupported.
    """
    spans = sentence_spans(answer)
    if not analysis and spans:  # nothing to support the answer with
        analysis = [SentenceSupport(answer[s:e], (), False, {}) for s, e in spans]
    if len(spans) != len(analysis):  # analysis of another text: leave it
        return answer, []
    pieces: list[str] = []
    unsupported: list[str] = []
    last = 0
    for (s, e), a in zip(spans, analysis, strict=True):
        text = answer[s:e]
        pieces.append(answer[last:s])
        last = e
        if not tokenize(_MARKER.sub("", text)):
            pieces.append(text)
            continue
        if not any(a.support[n] >= threshold for n in a.cited):
            best = max(a.support, key=a.support.__getitem__, default=None)
            if a.marked and best is not None and a.support[best] >= threshold:
                # supported, by another source than the one it cites: cite that one
                if mark:
                    first = _MARKER.search(text)
                    assert first is not None  # a marked sentence
                    text = (text[:first.start()] + f"[{best}]"
                            + _MARKER.sub("", text[first.end():]))
                pieces.append(text)
                continue
            unsupported.append(text.strip())
            if not strict:
                pieces.append(text)
            continue
        if mark and not a.marked:
            body = text.rstrip()
            end = _END.search(body)
            cut = end.start() if end else len(body)
            text = f"{body[:cut]} [{a.cited[0]}]{body[cut:]}{text[len(body):]}"
        pieces.append(text)
    pieces.append(answer[last:])
    return "".join(pieces).strip(), unsupported


def analyse(answer: str, sources: list[Chunk], embedder: Embedder | None = None,
            ) -> list[SentenceSupport]:
    """Per answer sentence: its cited sources and its support by every source."""
    sentences = answer_sentences(answer)
    if not sentences or not sources:
        return []
    plain = [_MARKER.sub("", s).strip() for s in sentences]
    lexical = np.array([[lexical_support(s, c.text) for c in sources] for s in plain])
    if embedder is not None:
        semantic = semantic_support(plain, [c.text for c in sources], embedder)
        scores = 0.5 * lexical + 0.5 * semantic
    else:
        scores = lexical
    out = []
    for i, sentence in enumerate(sentences):
        marked = tuple(dict.fromkeys(
            int(n) for m in _MARKER.finditer(sentence)
            for n in re.split(r"\s*[,，、]\s*", m.group(1)) if 1 <= int(n) <= len(sources)))
        support = {n: float(scores[i, n - 1]) for n in range(1, len(sources) + 1)}
        if marked:
            out.append(SentenceSupport(sentence, marked, True, support))
            continue
        if not tokenize(plain[i]):
            out.append(SentenceSupport(sentence, (), False, support))
            continue
        best = int(np.argmax(scores[i])) + 1
        cited = (best,) if scores[i, best - 1] >= _ATTRIBUTION_FLOOR else ()
        out.append(SentenceSupport(sentence, cited, False, support))
    return out


def cite(answer: str, hits: list[Hit], embedder: Embedder | None = None,
         threshold: float = THRESHOLD, analysis: list[SentenceSupport] | None = None,
         ) -> list[Citation]:
    """The citations of ``answer`` over the numbered ``hits`` (numbered from 1);
    ``analysis`` is :func:`analyse`'s, when it was already made."""
    if analysis is None:
        analysis = analyse(answer, [h.chunk for h in hits], embedder)
    by_source: dict[int, list[tuple[int, float, bool]]] = {}
    for i, s in enumerate(analysis):
        for n in s.cited:
            by_source.setdefault(n, []).append((i, s.support[n], s.marked))
    citations = []
    for n in sorted(by_source):
        entries = by_source[n]
        support = min(score for _, score, _ in entries)
        hit = hits[n - 1]
        citations.append(Citation(
            n=n, chunk=hit.chunk, score=hit.score, support=support,
            supported=support >= threshold, sentences=tuple(i for i, _, _ in entries),
            marked=any(m for _, _, m in entries), suspicious=suspicious(hit.chunk.text),
        ))
    return citations
