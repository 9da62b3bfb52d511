"""Which language a text is in, as far as ragtune needs to know (English or Chinese)."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def detect_language(text: str) -> str:
    """``"zh"`` when CJK characters are at least a fifth of characters plus Latin words.

    Example:
        >>> detect_language("iPhone 的销量是多少？"), detect_language("How many?")
        ('zh', 'en')
    """
    cjk = len(_CJK.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    return "zh" if cjk and cjk >= 0.2 * (cjk + latin_words) else "en"
