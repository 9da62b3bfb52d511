"""The ways to answer: the model alone, RAG, and fine-tuning combined with RAG.

- ``closed``: the (fine-tuned) model alone, no retrieval;
- ``rag``: retrieve, then the base model answers from numbered sources with citations;
- ``serial``: retrieve, then the fine-tuned model answers from the sources, citations kept;
- ``parallel``: the fine-tuned model drafts an answer from memory while retrieval runs;
  then one step reconciles the draft with the sources and cites them. The two branches
  run at once, so the wait is the slower branch, not the sum.

Each answer names its pipeline, the steps that ran and their timings (milliseconds).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ragtune.errors import ConfigError
from ragtune.models.protocol import Embedder, Generator
from ragtune.rag.answer import answer, answer_from_hits
from ragtune.rag.prompts import detect_language
from ragtune.retrieve.protocol import Retriever
from ragtune.types import Answer, Message

__all__ = ["PIPELINES", "Pipelines", "closed_messages"]

PIPELINES = ("closed", "rag", "serial", "parallel")

_CLOSED_SYSTEM = {
    "en": "Answer the question briefly and accurately. If you do not know, say so.",
    "zh": "简洁准确地回答问题。如果不知道，就说不知道。",
}


def closed_messages(question: str, lang: str) -> list[Message]:
    return [{"role": "system", "content": _CLOSED_SYSTEM[lang]},
            {"role": "user", "content": question.strip()}]


@dataclass
class Pipelines:
    """Run any pipeline over one retriever with a base and an optional tuned generator.

    ``tuned`` is the fine-tuned (or RAFT) model; without one, ``closed``, ``serial`` and
    ``parallel`` use the base model, so every pipeline runs before any training.
    """

    retriever: Retriever
    base: Generator
    tuned: Generator | None = None
    embedder: Embedder | None = None
    k: int = 5
    max_tokens: int = 256
    temperature: float = 0.0
    kb_version: int | None = None
    prompt_style: str | None = None
    source_order: str = "best-last"
    adapter: str | None = None

    @property
    def _expert(self) -> Generator:
        return self.tuned if self.tuned is not None else self.base

    def ask(self, question: str, pipeline: str = "rag") -> Answer:
        if pipeline not in PIPELINES:
            raise ConfigError(f"unknown pipeline {pipeline!r}; valid choices: "
                              f"{', '.join(PIPELINES)}")
        result: Answer = getattr(self, f"_{pipeline}")(question)
        uses_tuned = pipeline != "rag" and self.tuned is not None
        return replace(result, pipeline=pipeline, adapter=self.adapter if uses_tuned else None)

    def _common(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "embedder": self.embedder, "kb_version": self.kb_version,
                "prompt_style": self.prompt_style, "source_order": self.source_order}

    def _closed(self, question: str) -> Answer:
        t0 = time.perf_counter()
        lang = detect_language(question)
        completion = self._expert.generate(closed_messages(question, lang),
                                           max_tokens=self.max_tokens,
                                           temperature=self.temperature)
        ms = (time.perf_counter() - t0) * 1e3
        return Answer(question=question, text=completion.text, citations=(),
                      timings={"generate_ms": ms, "total_ms": ms},
                      prompt_tokens=completion.prompt_tokens,
                      completion_tokens=completion.completion_tokens, language=lang,
                      kb_version=self.kb_version, steps=("generate",))

    def _rag(self, question: str) -> Answer:
        return answer(question, self.retriever, self.base, k=self.k, **self._common())

    def _serial(self, question: str) -> Answer:
        return answer(question, self.retriever, self._expert, k=self.k, **self._common())

    def _parallel(self, question: str) -> Answer:
        lang = detect_language(question)
        t0 = time.perf_counter()

        def draft() -> tuple[Any, float]:
            began = time.perf_counter()
            out = self._expert.generate(closed_messages(question, lang),
                                        max_tokens=self.max_tokens,
                                        temperature=self.temperature)
            return out, (time.perf_counter() - began) * 1e3

        def retrieve() -> tuple[Any, float]:
            began = time.perf_counter()
            hits = self.retriever.retrieve(question, self.k)
            return hits, (time.perf_counter() - began) * 1e3

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ragtune-parallel") as pool:
            drafting = pool.submit(draft)
            retrieving = pool.submit(retrieve)
            hits, retrieve_ms = retrieving.result()
            drafted, draft_ms = drafting.result()
        branches_ms = (time.perf_counter() - t0) * 1e3
        final = answer_from_hits(question, hits, self.base, draft=drafted.text,
                                 **self._common())
        timings = {"draft_ms": draft_ms, "retrieve_ms": retrieve_ms,
                   "branches_ms": branches_ms,
                   **{f"reconcile_{k}": v for k, v in final.timings.items()
                      if k != "total_ms"},
                   "total_ms": (time.perf_counter() - t0) * 1e3}
        return replace(final, timings=timings,
                       steps=("draft | retrieve", "prompt", "reconcile", "cite"),
                       prompt_tokens=final.prompt_tokens + drafted.prompt_tokens,
                       completion_tokens=final.completion_tokens + drafted.completion_tokens)
