"""Decoding that cannot loop: no n-gram of the answer is written twice, and generation
ends at a stop sequence.

Small models under greedy decoding fall into loops ("`.pdf`, `.pdf`, `.pdf`, ..." until
the token budget runs out). transformers' ``no_repeat_ngram_size`` and llama.cpp's
``repeat_penalty`` look at the prompt too, which for a RAG answer would forbid quoting the
sources; here only the tokens of the answer count: a token that would complete an
``n``-gram the answer already holds is banned. Greedy output is unchanged until the first
such repeat.

Example:
    >>> guard = NoRepeat(3)
    >>> for token in (1, 2, 3, 1):
    ...     guard.append(token)
    >>> guard.banned()  # 1, 2 was followed by 3 once: 3 may not follow it again
    []
    >>> guard.append(2)
    >>> guard.banned()
    [3]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = ["NoRepeat", "cut_after_marker", "cut_at_stop", "no_repeat_processor", "stop_when",
           "until_marker", "until_stop"]

_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


class NoRepeat:
    """The answer's tokens so far and, for each ``n - 1`` tokens, what followed them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.tokens: list[int] = []
        self._next: dict[tuple[int, ...], set[int]] = {}

    def append(self, token: int) -> None:
        self.tokens.append(token)
        if self.n > 0 and len(self.tokens) >= self.n:
            key = tuple(self.tokens[-self.n:-1])
            self._next.setdefault(key, set()).add(token)

    def banned(self, draft: Sequence[int] = ()) -> list[int]:
        """Ids that may not come next after the answer followed by ``draft`` (tokens not
        accepted yet, whose own n-grams count too)."""
        if self.n <= 0:
            return []
        if self.n == 1:
            return sorted(set(self.tokens) | set(draft))
        seq = self.tokens[-(self.n - 1 + len(draft)):] + list(draft) if draft else None
        tail = tuple((seq or self.tokens)[-(self.n - 1):])
        if len(tail) < self.n - 1:
            return []
        out = set(self._next.get(tail, ()))
        if seq is not None:  # n-grams that end inside the draft
            for i in range(len(seq) - self.n + 1):
                if tuple(seq[i:i + self.n - 1]) == tail:
                    out.add(seq[i + self.n - 1])
        return sorted(out)


def no_repeat_processor(n: int, prompt_length: int) -> Any:
    """A transformers ``LogitsProcessor`` applying :class:`NoRepeat` to the tokens after
    the first ``prompt_length`` (one sequence)."""
    from transformers import LogitsProcessor

    class _NoRepeat(LogitsProcessor):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            for row in range(input_ids.shape[0]):
                guard = NoRepeat(n)
                for token in input_ids[row, prompt_length:].tolist():
                    guard.append(token)
                banned = guard.banned()
                if banned:
                    scores[row, banned] = float("-inf")
            return scores

    return _NoRepeat()


def stop_when(event: Any) -> Any:
    """transformers ``StoppingCriteriaList`` that ends generation once ``event`` (a
    ``threading.Event``) is set: the streaming consumer has stopped reading."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Ended(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool)

    return StoppingCriteriaList([_Ended()])


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first of ``stops`` it holds, and whether it held one.

    Example:
        >>> cut_at_stop("Paris [1]\nQuestion: and", ["\nQuestion:"])
        ('Paris [1]', True)
    """
    ends = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[:min(ends)], True) if ends else (text, False)


def until_stop(pieces: Iterable[str], stops: Sequence[str]) -> Iterator[str]:
    """Streamed ``pieces`` of text up to the first stop sequence. Text that could be the
    start of one is held back until it is known not to be, so the pieces joined are what
    :func:`cut_at_stop` gives for the whole text."""
    stops = [s for s in stops if s]
    if not stops:
        yield from pieces
        return
    longest = max(len(s) for s in stops)
    held = ""
    for piece in pieces:
        held += piece
        text, cut = cut_at_stop(held, stops)
        if cut:
            if text:
                yield text
            return
        keep = next((n for n in range(min(longest, len(held)), 0, -1)
                     if any(s.startswith(held[-n:]) for s in stops)), 0)
        if len(held) > keep:
            yield held[:len(held) - keep]
            held = held[len(held) - keep:]
    if held:
        yield held


def cut_after_marker(text: str) -> tuple[str, bool]:
    """``text`` up to the end of its first ``[n]`` marker, and whether it had one: the
    end of an answer in the grounded adapters' format, ``short answer [n]``.

    Example:
        >>> cut_after_marker("Denver Broncos [1]. [2] other.md (About)")
        ('Denver Broncos [1]', True)
    """
    match = _MARKER.search(text)
    return (text[:match.end()], True) if match else (text, False)


def until_marker(pieces: Iterable[str]) -> Iterator[str]:
    """Streamed ``pieces`` up to the end of the first ``[n]`` marker (see
    :func:`cut_after_marker`)."""
    text, sent = "", 0
    for piece in pieces:
        text += piece
        cut, found = cut_after_marker(text)
        if found:
            if len(cut) > sent:
                yield cut[sent:]
            return
        yield text[sent:]
        sent = len(text)


def abstention_tokens(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """The token ids of an abstention ``text`` (``The sources do not say.``) and the ids
    that, after its first token, begin the same refusal: the one-token forms of its second
    word with its leading space, lower case and capitalised, singular and plural
    (`` sources``, `` Source``, ...). Empty lists for an empty ``text``."""
    ids: list[int] = tokenizer.encode(text, add_special_tokens=False) if text else []
    if len(ids) < 2:
        return ids, []
    stem = str(tokenizer.decode(ids[1:2])).strip().lower().removesuffix("s")
    forms = {f" {w}" for b in (stem, stem + "s") for w in (b, b.capitalize())}
    encoded = [tokenizer.encode(f, add_special_tokens=False) for f in forms]
    return ids, sorted({e[0] for e in encoded if len(e) == 1} | {ids[1]})
