"""Pack retrieved chunks into the generator's context window, counted by its own tokenizer."""

from __future__ import annotations

from ragtune.models.protocol import Generator
from ragtune.rag.prompts import build_messages
from ragtune.types import Chunk, Hit


def pack(question: str, hits: list[Hit], generator: Generator, *, reserve: int,
         lang: str = "en", style: str = "full", order: str = "best-last",
         ) -> tuple[list[Hit], list[Hit], int]:
    """Hits that fit, hits that did not, and the prompt's token count.

    Hits are taken in rank order; one that does not fit is recorded as dropped and the
    next ones are still tried (a shorter chunk may fit). ``reserve`` output tokens are
    kept free: ``prompt_tokens + reserve <= generator.context_window``.
    """
    budget = generator.context_window - reserve
    if budget <= 0:
        raise ValueError(f"context window {generator.context_window} leaves no room for the "
                         f"prompt after reserving {reserve} output tokens")
    kept: list[Hit] = []
    dropped: list[Hit] = []
    chunks: list[Chunk] = []
    tokens = generator.count_tokens(build_messages(question, chunks, lang, style, order))
    for hit in hits:
        candidate = [*chunks, hit.chunk]
        n = generator.count_tokens(build_messages(question, candidate, lang, style, order))
        if n <= budget:
            kept.append(hit)
            chunks = candidate
            tokens = n
        else:
            dropped.append(hit)
    return kept, dropped, tokens
