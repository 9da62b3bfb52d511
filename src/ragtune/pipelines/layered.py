"""``layered``: retrieve, let a router pick closed, rag, serial or abstain for the question
(:mod:`ragtune.pipelines.router`), answer, and let a judge score the answer's support by
the sources (:mod:`ragtune.pipelines.judge`); below the threshold, fall back to the next
strategy, and abstain when none passes."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from ragtune.pipelines.closed import Closed
from ragtune.pipelines.judge import ABSTAIN, Judge
from ragtune.pipelines.parts import Parts
from ragtune.rag.answer import answer_from_hits
from ragtune.rag.prompts import detect_language
from ragtune.types import Answer

__all__ = ["Layered"]


@dataclass(frozen=True)
class Layered:
    parts: Parts

    def fallbacks(self, strategy: str) -> list[str]:
        """The strategies tried in turn for the router's ``strategy``."""
        expert_rag = "serial" if self.parts.tuned is not None else "rag"
        order = {"closed": ["closed", expert_rag], "rag": ["rag", "serial"],
                 "serial": ["serial", "rag"], "abstain": []}[strategy]
        return list(dict.fromkeys(order))[: self.parts.max_attempts]

    def answer(self, question: str) -> Answer:
        p = self.parts
        lang = detect_language(question)
        t0 = time.perf_counter()
        hits = p.retriever.retrieve(question, p.k)
        timings = {"retrieve_ms": (time.perf_counter() - t0) * 1e3}
        t = time.perf_counter()
        vector = None
        if getattr(p.router, "use_embedding", False) and p.embedder is not None:
            vector = p.embedder.embed([question])[0]
        route = p.router.route(question, hits, has_tuned=p.tuned is not None,
                               query_vector=vector)
        timings["route_ms"] = (time.perf_counter() - t) * 1e3
        judge = p.judge or Judge(embedder=p.embedder)
        steps = ["retrieve", f"route:{route.strategy}"]
        verdicts: list[dict[str, Any]] = []
        prompt_tokens = completion_tokens = 0
        for strategy in self.fallbacks(route.strategy):
            if strategy == "closed":
                result = Closed(p).answer(question)
            else:
                generator = p.base if strategy == "rag" else p.expert
                result = answer_from_hits(question, hits, generator, **p.options())
            prompt_tokens += result.prompt_tokens
            completion_tokens += result.completion_tokens
            for key, ms in result.timings.items():
                if key != "total_ms":
                    timings[f"{strategy}_{key}"] = ms
            t = time.perf_counter()
            verdict = judge.judge(result.text, hits)
            timings[f"{strategy}_judge_ms"] = (time.perf_counter() - t) * 1e3
            steps += [strategy, "judge"]
            verdicts.append({"strategy": strategy, "answer": result.text, **verdict.to_dict()})
            if verdict.passed:
                timings["total_ms"] = (time.perf_counter() - t0) * 1e3
                return replace(result, timings=timings, steps=tuple(steps),
                               route=route.to_dict(), judge={"verdicts": verdicts},
                               prompt_tokens=prompt_tokens,
                               completion_tokens=completion_tokens)
        steps.append("abstain")
        timings["total_ms"] = (time.perf_counter() - t0) * 1e3
        return Answer(question=question, text=ABSTAIN[lang], citations=(), timings=timings,
                      prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      language=lang, kb_version=p.kb_version, steps=tuple(steps),
                      route=route.to_dict(), judge={"verdicts": verdicts}, abstained=True)
