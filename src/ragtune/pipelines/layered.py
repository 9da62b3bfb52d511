"""The ways to answer: the model alone, RAG, and fine-tuning combined with RAG.

- ``closed``: the (fine-tuned) model alone, no retrieval;
- ``rag``: retrieve, then the base model answers from numbered sources with citations;
- ``serial``: retrieve, then the fine-tuned model answers from the sources, citations kept;
- ``parallel``: the fine-tuned model drafts an answer from memory while retrieval runs;
  then one step reconciles the draft with the sources and cites them. The two branches
  run at once, so the wait is the slower branch, not the sum;
- ``layered``: retrieve, let a router pick closed, rag, serial or abstain for the question
  (:mod:`ragtune.router`), answer, and let a judge score the answer's support by the
  sources (:mod:`ragtune.judge`); below the threshold, fall back to the next strategy,
  and abstain when none passes.

Each answer names its pipeline, the steps that ran and their timings (milliseconds).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from ragtune.errors import ConfigError
from ragtune.judge import ABSTAIN, Judge
from ragtune.models.protocol import Embedder, Generator
from ragtune.rag.answer import answer, answer_from_hits
from ragtune.rag.prompts import detect_language
from ragtune.retrieve.protocol import Retriever
from ragtune.router import Router, RuleRouter
from ragtune.types import Answer, Message

__all__ = ["PIPELINES", "Pipelines", "closed_messages"]

PIPELINES = ("closed", "rag", "serial", "parallel", "layered")

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
    max_tokens: int = 96
    temperature: float = 0.0
    kb_version: int | None = None
    prompt_style: str | None = None
    source_order: str = "best-last"
    citations_mode: str = "inline"  # see ragtune.rag.answer.answer_from_hits
    min_similarity: float | None = None  # see ragtune.rag.relevance
    adapter: str | None = None
    router: Router = field(default_factory=RuleRouter)
    judge: Judge | None = None  # default: Judge(embedder=self.embedder)
    max_attempts: int = 2  # strategies tried by ``layered`` before it abstains

    @property
    def _expert(self) -> Generator:
        return self.tuned if self.tuned is not None else self.base

    def ask(self, question: str, pipeline: str = "rag") -> Answer:
        if pipeline not in PIPELINES:
            raise ConfigError(f"unknown pipeline {pipeline!r}; valid choices: "
                              f"{', '.join(PIPELINES)}")
        result: Answer = getattr(self, f"_{pipeline}")(question)
        answered_by = pipeline
        if pipeline == "layered":
            passed = [v for v in (result.judge or {}).get("verdicts", []) if v["passed"]]
            answered_by = passed[-1]["strategy"] if passed else "abstain"
        uses_tuned = self.tuned is not None and answered_by in ("closed", "serial", "parallel")
        return replace(result, pipeline=pipeline,
                       adapter=self.adapter if uses_tuned else result.adapter)

    def _common(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "embedder": self.embedder, "kb_version": self.kb_version,
                "prompt_style": self.prompt_style, "source_order": self.source_order,
                "citations_mode": self.citations_mode, "min_similarity": self.min_similarity}

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

    def _fallbacks(self, strategy: str) -> list[str]:
        expert_rag = "serial" if self.tuned is not None else "rag"
        order = {"closed": ["closed", expert_rag], "rag": ["rag", "serial"],
                 "serial": ["serial", "rag"], "abstain": []}[strategy]
        return list(dict.fromkeys(order))[: self.max_attempts]

    def _layered(self, question: str) -> Answer:
        lang = detect_language(question)
        t0 = time.perf_counter()
        hits = self.retriever.retrieve(question, self.k)
        timings = {"retrieve_ms": (time.perf_counter() - t0) * 1e3}
        t = time.perf_counter()
        vector = None
        if getattr(self.router, "use_embedding", False) and self.embedder is not None:
            vector = self.embedder.embed([question])[0]
        route = self.router.route(question, hits, has_tuned=self.tuned is not None,
                                  query_vector=vector)
        timings["route_ms"] = (time.perf_counter() - t) * 1e3
        judge = self.judge or Judge(embedder=self.embedder)
        steps = ["retrieve", f"route:{route.strategy}"]
        verdicts: list[dict[str, Any]] = []
        prompt_tokens = completion_tokens = 0
        for strategy in self._fallbacks(route.strategy):
            if strategy == "closed":
                result = self._closed(question)
            else:
                generator = self.base if strategy == "rag" else self._expert
                result = answer_from_hits(question, hits, generator, **self._common())
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
                      language=lang, kb_version=self.kb_version, steps=tuple(steps),
                      route=route.to_dict(), judge={"verdicts": verdicts}, abstained=True)
