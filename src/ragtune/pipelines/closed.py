"""``closed``: the (fine-tuned) model alone, no retrieval."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ragtune.pipelines.parts import Parts
from ragtune.rag.prompts import detect_language
from ragtune.types import Answer, Message

__all__ = ["Closed", "closed_messages"]

_CLOSED_SYSTEM = {
    "en": "Answer the question briefly and accurately. If you do not know, say so.",
    "zh": "简洁准确地回答问题。如果不知道，就说不知道。",
}


def closed_messages(question: str, lang: str) -> list[Message]:
    return [{"role": "system", "content": _CLOSED_SYSTEM[lang]},
            {"role": "user", "content": question.strip()}]


@dataclass(frozen=True)
class Closed:
    parts: Parts

    def answer(self, question: str) -> Answer:
        p = self.parts
        t0 = time.perf_counter()
        lang = detect_language(question)
        completion = p.expert.generate(closed_messages(question, lang),
                                       max_tokens=p.max_tokens, temperature=p.temperature)
        ms = (time.perf_counter() - t0) * 1e3
        return Answer(question=question, text=completion.text, citations=(),
                      timings={"generate_ms": ms, "total_ms": ms},
                      prompt_tokens=completion.prompt_tokens,
                      completion_tokens=completion.completion_tokens, language=lang,
                      kb_version=p.kb_version, steps=("generate",))
