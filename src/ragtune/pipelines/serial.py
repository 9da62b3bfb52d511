"""Retrieve, then generate from numbered sources with citations: ``serial`` with the
fine-tuned model, ``rag`` with the base one."""

from __future__ import annotations

from dataclasses import dataclass

from ragtune.pipelines.parts import Parts
from ragtune.rag.answer import answer
from ragtune.types import Answer

__all__ = ["Serial", "rag"]


@dataclass(frozen=True)
class Serial:
    parts: Parts
    tuned: bool = True  # False: the base model answers (``rag``)

    def answer(self, question: str) -> Answer:
        p = self.parts
        generator = p.expert if self.tuned else p.base
        return answer(question, p.retriever, generator, k=p.k, **p.options())


def rag(parts: Parts) -> Serial:
    """``rag``: the base model over the sources."""
    return Serial(parts, tuned=False)
