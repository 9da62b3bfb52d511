"""``parallel``: the fine-tuned model drafts an answer from memory while retrieval runs;
then one step reconciles the draft with the sources and cites them. The two branches run
at once, so the wait is the slower branch, not the sum."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ragtune.pipelines.closed import closed_messages
from ragtune.pipelines.parts import Parts
from ragtune.rag.answer import answer_from_hits
from ragtune.rag.prompts import detect_language
from ragtune.types import Answer

__all__ = ["Parallel"]


@dataclass(frozen=True)
class Parallel:
    parts: Parts

    def answer(self, question: str) -> Answer:
        p = self.parts
        lang = detect_language(question)
        t0 = time.perf_counter()

        def draft() -> tuple[Any, float]:
            began = time.perf_counter()
            out = p.expert.generate(closed_messages(question, lang),
                                    max_tokens=p.max_tokens, temperature=p.temperature)
            return out, (time.perf_counter() - began) * 1e3

        def retrieve() -> tuple[Any, float]:
            began = time.perf_counter()
            hits = p.retriever.retrieve(question, p.k)
            return hits, (time.perf_counter() - began) * 1e3

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ragtune-parallel") as pool:
            drafting = pool.submit(draft)
            retrieving = pool.submit(retrieve)
            hits, retrieve_ms = retrieving.result()
            drafted, draft_ms = drafting.result()
        branches_ms = (time.perf_counter() - t0) * 1e3
        final = answer_from_hits(question, hits, p.base, draft=drafted.text, **p.options())
        timings = {"draft_ms": draft_ms, "retrieve_ms": retrieve_ms,
                   "branches_ms": branches_ms,
                   **{f"reconcile_{k}": v for k, v in final.timings.items()
                      if k != "total_ms"},
                   "total_ms": (time.perf_counter() - t0) * 1e3}
        return replace(final, timings=timings,
                       steps=("draft | retrieve", "prompt", "reconcile", "cite"),
                       prompt_tokens=final.prompt_tokens + drafted.prompt_tokens,
                       completion_tokens=final.completion_tokens + drafted.completion_tokens)
