"""Every arm answers the same questions; scores, intervals, latency and cost side by side.

An arm is a pipeline and, for the fine-tuned arms, an adapter:

======== ========== ============================================================
arm      pipeline   model
======== ========== ============================================================
closed   closed     the base model alone
rag      rag        the base model over retrieved sources
ft       closed     the fine-tuned model alone (``--adapter ft=RUN``)
ft+rag   serial     the fine-tuned model over retrieved sources (``ft``)
raft     serial     the RAFT-trained model over retrieved sources (``raft=RUN``)
parallel parallel   ``ft`` drafts while retrieval runs; the base reconciles
layered  layered    router, answer, judge (``ft`` when given)
======== ========== ============================================================

Answers are appended to ``OUT/answers/<arm>.jsonl`` as they come, so an interrupted run
continues where it stopped; ``OUT/run.json`` records the dataset, knowledge base, models
and adapters, and a rerun whose settings differ is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune._version import package_version
from ragtune.errors import ConfigError
from ragtune.evaluate.datasets import QADataset, QAItem
from ragtune.evaluate.scoring import METRICS, paired_bootstrap, percentile, score_answer
from ragtune.pipelines.judge import support_score
from ragtune.types import Answer, Chunk

__all__ = ["ARMS", "Arm", "Prices", "compare", "parse_arms", "parse_gates", "check_gates"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    name: str
    pipeline: str
    adapter_key: str | None  # which --adapter NAME=RUN it answers with
    needs_adapter: bool = False


ARMS = {
    "closed": Arm("closed", "closed", None),
    "rag": Arm("rag", "rag", None),
    "ft": Arm("ft", "closed", "ft", True),
    "ft+rag": Arm("ft+rag", "serial", "ft", True),
    "raft": Arm("raft", "serial", "raft", True),
    "parallel": Arm("parallel", "parallel", "ft"),
    "layered": Arm("layered", "layered", "ft"),
}


@dataclass(frozen=True)
class Prices:
    """What a query costs: local compute by the hour, remote generation by the token."""

    local_hour: float = 0.10  # USD per hour of the machine answering (a small cloud VM)
    prompt_per_1m: float = 0.0  # USD per million prompt tokens (remote generators)
    completion_per_1m: float = 0.0

    @classmethod
    def load(cls, path: Path | None) -> Prices:
        if path is None:
            return cls()
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**{k: float(v) for k, v in data.items()})
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not a price table ({exc}); expected JSON like "
                              '{"local_hour": 0.1, "prompt_per_1m": 0.15, '
                              '"completion_per_1m": 0.6}') from exc


def parse_arms(spec: str | Sequence[str], adapters: dict[str, str]) -> list[Arm]:
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)
             if s.strip()]
    if not names:
        raise ConfigError("no arms given; choose from " + ", ".join(ARMS))
    arms = []
    for name in dict.fromkeys(names):
        if name not in ARMS:
            raise ConfigError(f"unknown arm {name!r}; valid choices: {', '.join(ARMS)}")
        arm = ARMS[name]
        if arm.needs_adapter and arm.adapter_key not in adapters:
            raise ConfigError(f"arm {name!r} needs a fine-tuned model: add --adapter "
                              f"{arm.adapter_key}=RUN (a `ragtune tune lora` run folder)")
        arms.append(arm)
    return arms


def parse_gates(specs: Sequence[str]) -> list[tuple[str, str, float]]:
    """``rag.f1=0.30`` -> ``("rag", "f1", 0.30)``."""
    gates = []
    for spec in specs:
        try:
            target, value = spec.split("=", 1)
            arm, metric = target.rsplit(".", 1)
            gates.append((arm, metric, float(value)))
        except ValueError as exc:
            raise ConfigError(f"--fail-under {spec!r}: expected ARM.METRIC=VALUE, e.g. "
                              "rag.f1=0.30") from exc
    return gates


def check_gates(summary: dict[str, dict[str, Any]], gates: Sequence[tuple[str, str, float]],
                ) -> list[str]:
    """The gates missed, each as a sentence (empty when all pass)."""
    missed = []
    for arm, metric, floor in gates:
        if arm not in summary:
            missed.append(f"{arm}.{metric}: no arm {arm!r} in this run")
            continue
        value = summary[arm]["metrics"].get(metric, {}).get("mean")
        if value is None:
            missed.append(f"{arm}.{metric}: not measured (unknown metric, or no question "
                          "defines it)")
        elif value < floor:
            missed.append(f"{arm}.{metric} = {value:.4f} < {floor}")
    return missed


def _file_sha(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(item: QAItem, answer: Answer) -> dict[str, Any]:
    return {
        "id": item.id, "answer": answer.text, "abstained": answer.abstained,
        "pipeline": answer.pipeline, "steps": list(answer.steps),
        "citations": [{"n": c.n, "id": c.chunk.id, "source": c.chunk.source,
                       "supported": c.supported} for c in answer.citations],
        "context": [c.text for c in answer.context],
        "context_ids": [c.id for c in answer.context],
        "timings": {k: round(v, 3) for k, v in answer.timings.items()},
        "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
        "route": (answer.route or {}).get("strategy"),
    }


def _cut_short(path: Path) -> bool:
    """Whether ``path`` ends in the middle of a line."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            done[record["id"]] = record
        except (ValueError, KeyError):
            continue  # a line cut short by a kill: answered again
    return done


@dataclass
class Comparison:
    """What :func:`compare` measured: per arm and question, then summarised."""

    config: dict[str, Any]
    items: list[QAItem]
    records: dict[str, dict[str, dict[str, Any]]]  # arm -> question id -> record
    scores: dict[str, dict[str, dict[str, float | None]]]  # arm -> id -> metric -> value
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "summary": self.summary,
            "questions": [
                {"id": item.id, "question": item.question, "answers": list(item.answers),
                 "answerable": item.answerable, "source": item.source,
                 "arms": {arm: {**{k: v for k, v in self.records[arm][item.id].items()
                                   if k not in ("context", "id")},
                                "scores": self.scores[arm][item.id]}
                          for arm in self.records}}
                for item in self.items],
        }


def compare(
    kb: Any,
    dataset: QADataset,
    arms: Sequence[Arm],
    out: Path,
    *,
    adapters: dict[str, str] | None = None,
    reference: str | None = None,
    k: int | None = None,
    max_tokens: int | None = None,
    limit: int | None = None,
    prices: Prices | None = None,
    samples: int = 2000,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Answer ``dataset``'s questions with every arm (resuming from ``out``) and score them.

    ``reference`` is the arm the others are compared with (default ``rag`` when present,
    else the first); ``limit`` keeps the first N questions.
    """
    adapters = {key: str(Path(run).resolve()) for key, run in (adapters or {}).items()}
    prices = prices or Prices()
    items = dataset.items[:limit] if limit else list(dataset.items)
    names = [a.name for a in arms]
    reference = reference or ("rag" if "rag" in names else names[0])
    if reference not in names:
        raise ConfigError(f"the reference arm {reference!r} is not among the arms "
                          f"({', '.join(names)})")
    gen = kb.settings.generator
    config = {
        "ragtune": package_version(), "python": platform.python_version(),
        "dataset": dataset.describe() | {"questions_used": len(items)},
        "knowledge_base": {"path": str(kb.path), "version": kb.version,
                           "embedder": kb.manifest.embedder_model},
        "generator": {"backend": gen.backend, "model": gen.model,
                      "max_tokens": max_tokens or gen.max_tokens,
                      "temperature": gen.temperature},
        "k": k or kb.settings.retrieval.k, "retrieval_mode": kb.settings.retrieval.mode,
        "arms": {a.name: {"pipeline": a.pipeline,
                          "adapter": adapters.get(a.adapter_key or ""),
                          "adapter_sha256": _file_sha(
                              Path(adapters[a.adapter_key]) / "adapter"
                              / "adapter_model.safetensors")
                          if a.adapter_key in adapters else None}
                 for a in arms},
        "reference": reference, "prices": prices.__dict__,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "answers").mkdir(exist_ok=True)
    _check_resume(out / "run.json", config)
    (out / "run.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    records: dict[str, dict[str, dict[str, Any]]] = {}
    for arm in arms:
        cache = out / "answers" / f"{arm.name}.jsonl"
        done = _read_cache(cache)
        todo = [item for item in items if item.id not in done]
        if done and todo:
            logger.info("%s: %d answers cached, %d to go", arm.name, len(done), len(todo))
        adapter = adapters.get(arm.adapter_key or "")
        with cache.open("a", encoding="utf-8") as f:
            if _cut_short(cache):
                f.write("\n")  # end a line a kill cut short, so the next one stands alone
            for n, item in enumerate(todo, 1):
                result = kb.ask(item.question, k=k, max_tokens=max_tokens,
                                pipeline=arm.pipeline, adapter=adapter)
                record = _record(item, result)
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()
                done[item.id] = record
                if progress:
                    progress(arm.name, len(items) - len(todo) + n, len(items))
        records[arm.name] = {item.id: done[item.id] for item in items}

    def support(text: str, context: Sequence[str]) -> float:
        chunks = [Chunk(id=str(i), source="", text=t, start=0, end=len(t))
                  for i, t in enumerate(context)]
        return support_score(text, chunks)

    scores = {arm: {item.id: score_answer(item, records[arm][item.id], support)
                    for item in items} for arm in records}
    result = Comparison(config, items, records, scores)
    result.summary = summarise(result, reference, prices, samples, seed)
    return result


def _check_resume(path: Path, config: dict[str, Any]) -> None:
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    keys = ("dataset", "knowledge_base", "generator", "k", "retrieval_mode")
    changed = [key for key in keys if _strip(old.get(key)) != _strip(config.get(key))]
    changed += [f"arm {name}" for name, arm in config["arms"].items()
                if name in old.get("arms", {}) and old["arms"][name] != arm]
    if changed:
        raise ConfigError(f"{path.parent} holds answers from other settings "
                          f"({', '.join(changed)} changed); use a new --out folder, or "
                          "delete this one to start again")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "questions_used"}
    return value


def summarise(result: Comparison, reference: str, prices: Prices, samples: int = 2000,
              seed: int = 0) -> dict[str, dict[str, Any]]:
    ids = [item.id for item in result.items]
    summary: dict[str, dict[str, Any]] = {}
    for arm, records in result.records.items():
        metrics: dict[str, Any] = {}
        for metric in METRICS:
            values = [result.scores[arm][i][metric] for i in ids]
            defined = [v for v in values if v is not None]
            entry: dict[str, Any] = {"mean": float(np.mean(defined)) if defined else None,
                                     "n": len(defined)}
            if arm != reference:
                entry["vs_reference"] = paired_bootstrap(
                    values, [result.scores[reference][i][metric] for i in ids],
                    samples=samples, seed=seed)
            metrics[metric] = entry
        totals = [records[i]["timings"].get("total_ms", 0.0) for i in ids]
        steps: dict[str, list[float]] = {}
        for i in ids:
            for key, ms in records[i]["timings"].items():
                if key != "total_ms":
                    steps.setdefault(key.removesuffix("_ms"), []).append(ms)
        prompt = float(np.mean([records[i]["prompt_tokens"] for i in ids]))
        completion = float(np.mean([records[i]["completion_tokens"] for i in ids]))
        seconds_per_1k = float(np.mean(totals)) if totals else 0.0  # ms per query = s/1k
        summary[arm] = {
            "questions": len(ids),
            "metrics": metrics,
            "latency_ms": {"p50": percentile(totals, 50), "p95": percentile(totals, 95),
                           "steps": {s: {"p50": percentile(v, 50), "p95": percentile(v, 95),
                                         "mean": float(np.mean(v))}
                                     for s, v in steps.items()}},
            "tokens": {"prompt": prompt, "completion": completion},
            "cost_per_1k": {
                "compute_s": seconds_per_1k,
                "usd": seconds_per_1k / 3600 * prices.local_hour
                + 1000 * (prompt * prices.prompt_per_1m
                          + completion * prices.completion_per_1m) / 1e6},
            "routes": _count([records[i].get("route") for i in ids]),
        }
    return summary


def _count(values: Sequence[str | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        if v:
            out[v] = out.get(v, 0) + 1
    return out
