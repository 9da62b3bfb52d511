"""Score an answer before it is shown: is it supported by the sources, or a refusal?

The layered pipeline's last step. The score is the mean, over the answer's sentences, of
each sentence's best support by the sources it cites (by every retrieved source when it
cites none, as for a closed-book answer checked against what retrieval found). Support is
the citation checker's: term and term-bigram recall, averaged with embedding similarity
when an embedder is given. A refusal ("I do not know") scores 0 and says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.models.protocol import Embedder
from ragtune.rag.citations import analyse
from ragtune.types import Chunk, Hit

__all__ = ["ABSTAIN", "Judge", "Verdict", "is_refusal", "support_score"]

ABSTAIN = {
    "en": "I cannot answer this from the knowledge base.",
    "zh": "知识库中没有足够的信息回答这个问题。",
}

_REFUSAL = re.compile(
    r"\b(?:i|we)\s+(?:do\s+not|don't|cannot|can't|am\s+unable\s+to)\s+(?:know|answer|find|say|"
    r"determine|tell)|\b(?:not|no)\s+(?:enough\s+)?(?:information|mentioned|provided|stated|"
    r"specified)\b|\bsources?\s+(?:do|does)\s+not\s+(?:contain|say|mention)|\bunknown\b|"
    r"cannot answer this|不知道|无法回答|无法确定|没有(?:提到|提及|相关信息|足够的信息)|未提及",
    re.IGNORECASE)


def is_refusal(text: str) -> bool:
    """Whether ``text`` declines to answer (an empty answer counts as declining)."""
    return not text.strip() or _REFUSAL.search(text) is not None


def support_score(text: str, chunks: Sequence[Chunk], embedder: Embedder | None = None,
                  ) -> float:
    """Mean over the sentences of ``text`` of the best support by the chunks each cites
    (by any chunk for a sentence that cites none), in [0, 1]."""
    analysis = analyse(text, list(chunks), embedder)
    scored = [max(s.support[n] for n in (s.cited or s.support)) for s in analysis
              if s.support]
    return sum(scored) / len(scored) if scored else 0.0


@dataclass(frozen=True)
class Verdict:
    score: float
    passed: bool
    refused: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "passed": self.passed, "refused": self.refused,
                "reason": self.reason}


@dataclass
class Judge:
    """Pass an answer whose support score reaches ``threshold``."""

    threshold: float = 0.5
    embedder: Embedder | None = None

    def judge(self, text: str, hits: Sequence[Hit]) -> Verdict:
        if is_refusal(text):
            return Verdict(0.0, False, True, "the model declined to answer")
        if not hits:
            return Verdict(0.0, False, False, "no sources to check the answer against")
        score = support_score(text, [h.chunk for h in hits], self.embedder)
        if score >= self.threshold:
            return Verdict(score, True, False,
                           f"supported by the sources ({score:.2f} >= {self.threshold})")
        return Verdict(score, False, False,
                       f"not supported by the sources ({score:.2f} < {self.threshold})")
