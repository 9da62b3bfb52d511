"""What every pipeline is built from: one retriever, a base and an optional tuned generator,
and the generation settings they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragtune.models.protocol import Embedder, Generator
from ragtune.pipelines.judge import Judge
from ragtune.pipelines.router import Router, RuleRouter
from ragtune.retrieve.protocol import Retriever

__all__ = ["Parts"]


@dataclass
class Parts:
    """The parts of a pipeline.

    ``tuned`` is the fine-tuned (or RAFT) model; without one, ``closed``, ``serial`` and
    ``parallel`` use the base model, so every pipeline runs before any training.

    Example:
        >>> from ragtune.pipelines import Parts, ask
        >>> ask(Parts(retriever, generator), "What is ragtune?", "rag")  # doctest: +SKIP
    """

    retriever: Retriever
    base: Generator
    tuned: Generator | None = None
    embedder: Embedder | None = None
    k: int = 5
    max_tokens: int = 96
    temperature: float = 0.0
    kb_version: int | None = None
    prompt_style: str | None = None
    source_order: str = "best-last"
    citations_mode: str = "inline"  # see ragtune.rag.answer.answer_from_hits
    min_similarity: float | None = None  # see ragtune.rag.relevance
    sentences: int = 0  # sentences of each chunk shown (ragtune.rag.compress); 0: whole
    adapter: str | None = None
    router: Router = field(default_factory=RuleRouter)
    judge: Judge | None = None  # default: Judge(embedder=self.embedder)
    max_attempts: int = 2  # strategies tried by ``layered`` before it abstains

    @property
    def expert(self) -> Generator:
        """The tuned model, else the base one."""
        return self.tuned if self.tuned is not None else self.base

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`ragtune.rag.answer.answer` that every pipeline
        passes on."""
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "embedder": self.embedder, "kb_version": self.kb_version,
                "prompt_style": self.prompt_style, "source_order": self.source_order,
                "citations_mode": self.citations_mode, "min_similarity": self.min_similarity,
                "sentences": self.sentences}
