"""Answer a question with a pipeline chosen by name; each answer names its pipeline, the
steps that ran and their timings (milliseconds)."""

from __future__ import annotations

from dataclasses import replace

from ragtune.pipelines.parts import Parts
from ragtune.pipelines.registry import build_pipeline
from ragtune.types import Answer

__all__ = ["ask"]

_TUNED = ("closed", "serial", "parallel")  # the strategies that answer with the tuned model


def ask(parts: Parts, question: str, pipeline: str = "rag") -> Answer:
    """Answer ``question`` with ``pipeline`` (see :data:`ragtune.pipelines.PIPELINES`)."""
    result = build_pipeline(pipeline, parts).answer(question)
    answered_by = pipeline
    if pipeline == "layered":
        passed = [v for v in (result.judge or {}).get("verdicts", []) if v["passed"]]
        answered_by = passed[-1]["strategy"] if passed else "abstain"
    uses_tuned = parts.tuned is not None and answered_by in _TUNED
    return replace(result, pipeline=pipeline,
                   adapter=parts.adapter if uses_tuned else result.adapter)
