"""Metrics as pure functions: answers against gold answers, rankings against judgements.

Answers: SQuAD normalisation (lower case, no punctuation, no articles, single spaces) for
English, exact match and token F1 as in the SQuAD v1.1 script (Rajpurkar et al. 2016);
Chinese text is compared character by character, as in the CMRC and DuReader scripts;
ROUGE-L is the F-measure of the longest common subsequence of tokens (Lin 2004).

Rankings: definitions follow trec_eval / pytrec_eval as used by BEIR (Thakur et al. 2021):
nDCG@k with gains equal to the graded relevance and log2 discounts (Järvelin & Kekäläinen
2002), the ideal ranking computed from all judged relevant documents; recall@k is the
share of relevant documents retrieved in the top k; MRR@k the reciprocal rank of the first
relevant document.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

__all__ = ["exact_match", "final_answer", "mrr_at_k", "ndcg_at_k", "normalize_answer",
           "recall_at_k", "rouge_l", "token_f1", "tokens"]

_FINAL = re.compile(r"(?:Answer:|答案[:：])((?:(?!Answer:|答案[:：]).)*)", re.S)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("，。、：；？！（）“”‘’《》【】")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PIECES = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\u3400-\u9fff\uf900-\ufaff]+")


def normalize_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """Normalised tokens: words, with every CJK character its own token."""
    out: list[str] = []
    for word in normalize_answer(text).split():
        out.extend(_PIECES.findall(word) if _CJK.search(word) else [word])
    return out


def exact_match(prediction: str, references: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    best = 0.0
    pred = tokens(prediction)
    for ref in references:
        gold = tokens(ref)
        common = sum((Counter(pred) & Counter(gold)).values())
        if not pred or not gold:
            best = max(best, float(pred == gold))
        elif common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def _lcs(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F1 (longest common subsequence of normalised tokens), best over references."""
    best = 0.0
    pred = tokens(prediction)
    for ref in references:
        gold = tokens(ref)
        if not pred or not gold:
            continue
        lcs = _lcs(pred, gold)
        if lcs:
            p, r = lcs / len(pred), lcs / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def final_answer(text: str) -> str:
    """The text after the last ``Answer:`` line of a quote-style answer, else the text."""
    matches = list(_FINAL.finditer(text))
    if not matches:
        return text
    rest = matches[-1].group(1).strip()
    return rest or text


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
