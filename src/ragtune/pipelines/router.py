"""Pick a strategy per question: answer from memory, from the sources, or not at all.

The layered pipeline retrieves first (a few milliseconds), then asks a router which
strategy to use: ``closed`` (the fine-tuned model alone), ``rag`` (the base model over the
sources), ``serial`` (the fine-tuned model over the sources) or ``abstain``.

- :class:`RuleRouter`, the default before any training: with no evidence in the knowledge
  base (best dense similarity below a floor), the fine-tuned model answers from memory when
  there is one, else the question is declined; with evidence, the sources are used.
- :class:`LearnedRouter`, trained with ``ragtune router train --from RESULTS`` on evaluation
  outcomes: for each question the cheapest strategy that answered it correctly, as in
  Adaptive-RAG (Jeong et al. 2024). It is a multinomial logistic regression over query
  features, retrieval scores and the query embedding, a few kilobytes of JSON, and routes
  in well under a millisecond.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ragtune.errors import ConfigError, RagtuneError
from ragtune.rag.prompts import detect_language
from ragtune.rag.relevance import covering_source
from ragtune.types import Hit

__all__ = [
    "STRATEGIES", "LearnedRouter", "Route", "Router", "RuleRouter", "labels_from_results",
    "load_router", "query_features", "train_router",
]

STRATEGIES = ("closed", "rag", "serial", "abstain")
# the cost order used to label training questions: the first strategy that answered right
CHEAPEST_FIRST = ("closed", "rag", "serial")
ROUTER_FILE = "router.json"
# the strategy each evaluation arm stands for (ragtune.evaluate.harness.ARMS)
ARM_STRATEGY = {"closed": "closed", "ft": "closed", "rag": "rag", "ft+rag": "serial",
                "raft": "serial"}
_FORMAT = 1

_WH = ("who", "what", "when", "where", "why", "how", "which")
_WH_ZH = {"who": "谁", "what": "什么", "when": "何时|什么时候|哪一年", "where": "哪里|何处|哪儿",
          "why": "为什么|为何", "how": "如何|怎么|多少", "which": "哪个|哪些|哪种"}
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Route:
    """A router's decision: the strategy, why, and its probability or the scores it used."""

    strategy: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "reason": self.reason,
                "scores": {k: round(v, 4) for k, v in self.scores.items()}}


class Router(Protocol):
    def route(self, question: str, hits: Sequence[Hit], *, has_tuned: bool,
              query_vector: np.ndarray | None = None) -> Route: ...


def _top(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return max(present) if present else 0.0


def query_features(question: str, hits: Sequence[Hit]) -> dict[str, float]:
    """Cheap features of a question and what retrieval found for it."""
    lang = detect_language(question)
    words = _WORD.findall(question)
    lower = question.lower()
    dense = sorted((h.dense_score for h in hits if h.dense_score is not None), reverse=True)
    lexical = sorted((h.lexical_score for h in hits if h.lexical_score is not None),
                     reverse=True)
    out: dict[str, float] = {
        "log_chars": math.log1p(len(question)),
        "log_words": math.log1p(len(words)),
        "chinese": float(lang == "zh"),
        "digits": float(any(ch.isdigit() for ch in question)),
        "capitalised": len(_CAPITALISED.findall(question)) / max(len(words), 1),
        "quoted": float('"' in question or "“" in question),
        "dense_top": dense[0] if dense else 0.0,
        "dense_gap": dense[0] - dense[1] if len(dense) > 1 else 0.0,
        "dense_mean": float(np.mean(dense)) if dense else 0.0,
        "lexical_top": math.log1p(max(lexical[0], 0.0)) if lexical else 0.0,
        "lexical_gap": (math.log1p(max(lexical[0], 0.0)) - math.log1p(max(lexical[1], 0.0))
                        if len(lexical) > 1 else 0.0),
        "hits": float(len(hits)),
    }
    for wh in _WH:
        found = (re.search(rf"\b{wh}\b", lower) is not None if lang == "en"
                 else re.search(_WH_ZH[wh], question) is not None)
        out[f"wh_{wh}"] = float(found)
    return out


@dataclass
class RuleRouter:
    """Sources when retrieval found evidence, memory (or decline) when it did not.

    ``min_dense`` is the best query-chunk cosine below which the knowledge base is taken to
    have nothing on the question (all-MiniLM-L6-v2: related passages score above ~0.35,
    unrelated ones below ~0.2), unless one hit holds every term of the question
    (:func:`ragtune.rag.relevance.covering_source`: a short question is far from a long
    chunk that answers it, and embedders know little of acronyms and names). Without dense
    scores (lexical-only search), any lexical hit counts as evidence.
    """

    min_dense: float = 0.3

    def route(self, question: str, hits: Sequence[Hit], *, has_tuned: bool,
              query_vector: np.ndarray | None = None) -> Route:
        dense = _top([h.dense_score for h in hits])
        has_dense = any(h.dense_score is not None for h in hits)
        covered = (covering_source(question, hits)
                   if has_dense and dense < self.min_dense else None)
        evidence = dense >= self.min_dense or covered is not None if has_dense else bool(hits)
        scores = {"dense_top": dense}
        if evidence:
            strategy = "serial" if has_tuned else "rag"
            return Route(strategy, "retrieval found lexical matches" if not has_dense else
                         f"retrieval found evidence (source {covered} holds every term of "
                         "the question)" if covered is not None else
                         f"retrieval found evidence (dense {dense:.2f} >= {self.min_dense})",
                         scores)
        if has_tuned:
            return Route("closed", f"no evidence in the knowledge base (dense {dense:.2f} < "
                                   f"{self.min_dense}); the fine-tuned model answers alone",
                         scores)
        return Route("abstain", f"no evidence in the knowledge base (dense {dense:.2f} < "
                                f"{self.min_dense}) and no fine-tuned model", scores)


@dataclass
class LearnedRouter:
    """Multinomial logistic regression over :func:`query_features` and the query vector."""

    classes: list[str]
    feature_names: list[str]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # (n_features [+ embedding dim], n_classes)
    bias: np.ndarray
    use_embedding: bool
    info: dict[str, Any] = field(default_factory=dict)

    def _vector(self, question: str, hits: Sequence[Hit],
                query_vector: np.ndarray | None) -> np.ndarray:
        feats = query_features(question, hits)
        x = np.array([feats[n] for n in self.feature_names], dtype=np.float64)
        x = (x - self.mean) / self.std
        if self.use_embedding:
            dim = self.weights.shape[0] - len(self.feature_names)
            q = (np.zeros(dim) if query_vector is None
                 else np.asarray(query_vector, dtype=np.float64).reshape(-1))
            if q.shape[0] != dim:
                raise ConfigError(f"the router was trained on {dim}-d query vectors but this "
                                  f"knowledge base's embedder gives {q.shape[0]}-d; retrain "
                                  "it with `ragtune router train`")
            x = np.concatenate([x, q])
        return x

    def probabilities(self, question: str, hits: Sequence[Hit],
                      query_vector: np.ndarray | None = None) -> dict[str, float]:
        z = self._vector(question, hits, query_vector) @ self.weights + self.bias
        p = np.exp(z - z.max())
        p /= p.sum()
        return dict(zip(self.classes, p.tolist(), strict=True))

    def route(self, question: str, hits: Sequence[Hit], *, has_tuned: bool,
              query_vector: np.ndarray | None = None) -> Route:
        # trained on one setup's outcomes: without a fine-tuned model, closed and serial
        # run on the base model, as everywhere in ragtune.pipelines
        probs = self.probabilities(question, hits, query_vector)
        best = max(probs, key=lambda c: probs[c])
        return Route(best, f"learned router: p({best}) = {probs[best]:.2f}", probs)

    def save(self, path: Path) -> None:
        data = {"format": _FORMAT, "classes": self.classes, "features": self.feature_names,
                "mean": self.mean.tolist(), "std": self.std.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias.tolist(),
                "use_embedding": self.use_embedding, "info": self.info}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LearnedRouter:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                raise ConfigError(f"{path}: router format {data.get('format')!r} is not "
                                  f"{_FORMAT}; retrain it with `ragtune router train`")
            return cls(classes=list(data["classes"]), feature_names=list(data["features"]),
                       mean=np.array(data["mean"]), std=np.array(data["std"]),
                       weights=np.array(data["weights"]), bias=np.array(data["bias"]),
                       use_embedding=bool(data["use_embedding"]), info=data.get("info", {}))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RagtuneError(f"{path}: not a readable router file ({exc}); retrain it "
                               "with `ragtune router train`") from exc


def load_router(path: Path | None) -> Router:
    """The learned router at ``path`` when it exists, else the rule-based default."""
    if path is not None and path.is_file():
        return LearnedRouter.load(path)
    return RuleRouter()


def train_router(
    questions: Sequence[str],
    hits: Sequence[Sequence[Hit]],
    labels: Sequence[str],
    query_vectors: np.ndarray | None = None,
    *,
    l2: float = 1e-2,
    steps: int = 500,
    lr: float = 0.5,
) -> LearnedRouter:
    """Fit the router on ``labels`` (one strategy per question); full-batch gradient descent
    on the L2-regularised cross-entropy, with classes weighted by inverse frequency."""
    if len(questions) != len(labels) or len(hits) != len(labels):
        raise ValueError("questions, hits and labels differ in length")
    unknown = sorted(set(labels) - set(STRATEGIES))
    if unknown:
        raise ConfigError(f"unknown strategies in the labels: {', '.join(unknown)}; "
                          f"valid: {', '.join(STRATEGIES)}")
    classes = [s for s in STRATEGIES if s in set(labels)]
    if len(classes) < 2:
        raise ConfigError(f"every training question has the label {labels[0]!r}; a router "
                          "needs at least two strategies to choose between (evaluate more "
                          "arms or more questions)")
    feats = [query_features(q, h) for q, h in zip(questions, hits, strict=True)]
    names = list(feats[0])
    x = np.array([[f[n] for n in names] for f in feats], dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-9] = 1.0
    x = (x - mean) / std
    if query_vectors is not None:
        x = np.concatenate([x, np.asarray(query_vectors, dtype=np.float64)], axis=1)
    y = np.array([classes.index(label) for label in labels])
    onehot = np.eye(len(classes))[y]
    counts = Counter(labels)
    sample_w = np.array([len(labels) / (len(classes) * counts[label]) for label in labels])
    w = np.zeros((x.shape[1], len(classes)))
    b = np.zeros(len(classes))
    n = len(labels)
    for _ in range(steps):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample_w[:, None] / n
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum(axis=0)
    predicted = np.argmax(x @ w + b, axis=1)
    info = {"questions": n, "labels": dict(counts),
            "train_accuracy": round(float(np.mean(predicted == y)), 4)}
    return LearnedRouter(classes, names, mean, std, w, b, query_vectors is not None, info)


def labels_from_results(report: dict[str, Any], correct_f1: float = 0.5,
                        ) -> tuple[list[str], list[str]]:
    """Questions and their labels from a ``ragtune compare`` report: an unanswerable
    question is labelled ``abstain``; an answerable one the cheapest strategy
    (:data:`CHEAPEST_FIRST`) with an arm whose token F1 reaches ``correct_f1``. Answerable
    questions no arm got right are left out (there is nothing to learn from them)."""
    try:
        rows = report["questions"]
        questions, labels = [], []
        for row in rows:
            if not row["answerable"]:
                questions.append(row["question"])
                labels.append("abstain")
                continue
            right = {ARM_STRATEGY[arm] for arm, out in row["arms"].items()
                     if arm in ARM_STRATEGY and not out.get("abstained")
                     and (out["scores"].get("f1") or 0.0) >= correct_f1}
            label = next((s for s in CHEAPEST_FIRST if s in right), None)
            if label:
                questions.append(row["question"])
                labels.append(label)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"not a `ragtune compare` report (missing {exc}); pass the "
                          "report.json that compare wrote") from exc
    arms = {arm for row in rows for arm in row["arms"]}
    if not arms & set(ARM_STRATEGY):
        raise ConfigError(f"the report has no arm a router can learn from "
                          f"({', '.join(sorted(arms))}); compare at least two of "
                          f"{', '.join(ARM_STRATEGY)}")
    return questions, labels
