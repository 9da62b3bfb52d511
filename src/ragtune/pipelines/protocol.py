"""The pipeline role: one way to answer a question, built by name from its parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ragtune.types import Answer

if TYPE_CHECKING:
    from ragtune.pipelines.parts import Parts

__all__ = ["Pipeline", "PipelineFactory"]


class Pipeline(Protocol):
    def answer(self, question: str) -> Answer:
        """The answer, with the steps that ran and their timings (milliseconds)."""
        ...


PipelineFactory = Callable[["Parts"], Pipeline]
