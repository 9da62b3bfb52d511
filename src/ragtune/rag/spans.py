"""Short answers quoted from a source, completed where the quote stops too early.

A grounded adapter answers with one span of its source and that source's ``[n]``. Asked
for several things ("Which file formats can it read?"), a small model often quotes only the
first item of the source's enumeration ("plain text"), or stops before its last one
("plain text, Markdown, HTML"). Where the span is followed in the source by the rest of its
list in the same sentence (", Markdown, HTML and PDF"), and the question asks for more than
one thing, the answer is the whole list.

A span that stops on a word that cannot end a phrase ("the vector store and the") is
completed to the end of its clause in the source (:func:`complete_phrase`).

A span that opens a code span and stops inside it (``run `tool install``, the model
trained on prose ending before ``--all``) is completed to the closing backtick the source
has for it (:func:`close_code`): a command is quoted whole or not at all.

Example:
    >>> complete_list("plain text [1]", ["It reads plain text, Markdown and PDF (.txt)."],
    ...               "Which formats does it read?")
    'plain text, Markdown and PDF [1]'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["asks_for_several", "close_code", "complete_list", "complete_phrase"]

# the rest of an enumeration after its first item: ", B, C and D" up to the end of the
# clause; items are short and hold no clause punctuation
_ITEM = r"[^,;:.()\[\]\n]{1,48}?"
_REST = re.compile(rf"^((?:,\s*{_ITEM})*,?\s+(?:and|or)\s+{_ITEM})(?=\s*(?:[,;:.()\[\]\n]|$))")
_MARKERS = re.compile(r"\s*(\[\d+(?:\s*,\s*\d+)*\])+\s*$")
_CODE_REST = 120  # the most characters a code span is completed by
# words an English phrase does not end on: a span ending on one was cut mid-phrase
_OPEN_ENDS = frozenset(("and", "or", "nor", "but", "the", "a", "an", "of", "to", "in", "on",
                        "at", "by", "for", "from", "with", "into", "than", "as", "its",
                        "their", "his", "her", "our", "your", "whose"))
# the rest of a clause: up to its punctuation, a bracket or a line break, a few words
_CLAUSE = re.compile(r"^\s+([^,;:.!?()\[\]\n]{1,60}?)(?=\s*(?:[,;:.!?()\[\]\n]|$))")
# "Which file formats", "What countries", "What are", "List", "Name the": a word in -s
# after which/what that is not a verb or one of the singulars in -ss, -us, -is
_NOT_PLURAL = r"(?:was|does|is|has|this|its|his|us|thus|plus|yes)"
_SEVERAL = re.compile(
    r"^\s*(?:(?:which|what)\s+(?:\w+\s+){0,2}?(?!" + _NOT_PLURAL + r"\b)"
    r"\w+s\b(?<!ss)(?<!us)(?<!is)"
    r"|(?:which|what)\s+(?:are|were)\b|list\b|name\s+(?:the|all)\b)", re.IGNORECASE)


def asks_for_several(question: str) -> bool:
    """Whether ``question`` asks for several things (a plural after which/what, ``what
    are``, ``list``, ``name the``).

    >>> asks_for_several("Which file formats can ragtune ingest?"), asks_for_several("Who won?")
    (True, False)
    """
    return bool(_SEVERAL.search(question))


def _cited(answer: str, sources: Sequence[str]) -> tuple[str, str, str] | None:
    """The span of ``answer`` (``span [n]``), its markers and the text of the source its
    first marker names (1-based in ``sources``); None without a marker or such a source."""
    markers = _MARKERS.search(answer)
    if markers is None:
        return None
    number = int(re.findall(r"\d+", markers.group(0))[0])
    if not 1 <= number <= len(sources):
        return None
    return answer[:markers.start()].strip(), markers.group(0).strip(), sources[number - 1]


def complete_list(answer: str, sources: Sequence[str], question: str) -> str:
    """``answer`` (``span [n]``) with its span extended to the rest of the enumeration it
    begins in source ``n`` (1-based in ``sources``), when ``question`` asks for several
    things; else ``answer`` unchanged."""
    cited = _cited(answer, sources) if asks_for_several(question) else None
    if cited is None:
        return answer
    span, markers, source = cited
    items = span.split(",")  # the first item, or the first few ("plain text, Markdown")
    if (not span or any(len(i.split()) > 6 for i in items) or " and " in span
            or " or " in span):
        return answer  # a whole list already (its "and")
    at = source.find(span)
    if at < 0 or source[:at].rstrip().endswith(","):  # absent, or not the list's start
        return answer
    rest = _REST.match(source[at + len(span):])
    if rest is None:
        return answer
    return f"{span}{rest.group(1).rstrip()} {markers}"


def close_code(answer: str, sources: Sequence[str]) -> str:
    """``answer`` (``span [n]``) with a code span it leaves open closed as source ``n``
    (1-based in ``sources``) closes it, on the same line; else ``answer`` unchanged.

    >>> close_code("run `tool install [1]", ["To set up, run `tool install --all` first."])
    'run `tool install --all` [1]'
    """
    cited = _cited(answer, sources)
    if cited is None or cited[0].count("`") % 2 == 0:
        return answer
    span, markers, source = cited
    at = source.find(span)
    if at < 0:
        return answer
    after = source[at + len(span):at + len(span) + _CODE_REST]
    end = after.find("`")
    if end < 0 or "\n" in after[:end]:
        return answer
    return f"{span}{after[:end + 1]} {markers}"


def complete_phrase(answer: str, sources: Sequence[str]) -> str:
    """``answer`` (``span [n]``) completed to the end of its clause in source ``n`` (1-based
    in ``sources``) when the span ends on a word no phrase ends on (``and``, ``the``,
    ``of``...); else ``answer`` unchanged.

    >>> complete_phrase("the store and the [1]", ["It checks the store and the index agree."])
    'the store and the index agree [1]'
    """
    cited = _cited(answer, sources)
    words = cited[0].split() if cited else []
    if cited is None or not words or words[-1].lower() not in _OPEN_ENDS:
        return answer
    span, markers, source = cited
    # where the span ends in the source: all of it, else its last words (the model may
    # have changed a word near its start: "check that" for "checks that")
    tail = span if span in source else " ".join(words[-4:])
    at = source.find(tail) if len(words) >= 4 or tail == span else -1
    rest = _CLAUSE.match(source[at + len(tail):]) if at >= 0 else None
    if rest is None:
        return answer
    return f"{span} {rest.group(1).strip()} {markers}"
