"""Lexical tokenisation for BM25: English words stemmed (Snowball), Chinese words by jieba.

Text is lower-cased and NFKC-normalised; runs of CJK characters are segmented with
jieba's search mode (finer words, better recall), everything else is split on
non-alphanumerics. English stopwords (Lucene's 33-word English set, as shipped by bm25s and
used by the BEIR BM25 baseline) and a short list of Chinese function words are dropped.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any

TOKENIZER_VERSION = "ragtune-bm25-v1"

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_HAS_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ZH_STOP = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 被 把 对 从 到 这 那 之 其 "
    "为 以 于 上 中 下 个 着 过 吗 呢 吧 啊 一 有 我 你 他 她 它 们".split()
)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@functools.lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    # jieba prints its dictionary loading at INFO through its own handler; quiet it.
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def has_cjk(text: str) -> bool:
    return _HAS_CJK.search(text) is not None


def tokenize(text: str) -> list[str]:
    """BM25 terms of ``text``.

    Example:
        >>> tokenize("The cats are running")
        ['cat', 'run']
    """
    text = unicodedata.normalize("NFKC", text).lower()
    stop = _stopwords()
    stem: Callable[[list[str]], list[str]] = _stemmer().stemWords
    terms: list[str] = []
    cursor = 0
    for m in _CJK_RUN.finditer(text):
        words = [w for w in _WORD.findall(text[cursor:m.start()]) if w not in stop]
        terms.extend(stem(words))
        terms.extend(w for w in _jieba().cut_for_search(m.group())
                     if w.strip() and w not in _ZH_STOP)
        cursor = m.end()
    words = [w for w in _WORD.findall(text[cursor:]) if w not in stop]
    terms.extend(stem(words))
    return terms
