"""Measurements from a ``ragtune compare`` report, as the advisor reads them.

Each arm maps to an option (``ft+rag`` is the serial combination, ``raft`` the RAFT one);
the closed-book base arm is the baseline, never a recommendation. Per-question scores stay
with the arms so that two arms can be compared with a paired bootstrap interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.evaluate.scoring import paired_bootstrap

# arm -> (option, pattern)
ARM_OPTIONS: dict[str, tuple[str, str | None]] = {
    "rag": ("rag", None),
    "ft": ("finetune", None),
    "ft+rag": ("combination", "serial"),
    "raft": ("combination", "raft"),
    "parallel": ("combination", "parallel"),
    "layered": ("combination", "layered"),
}


@dataclass(frozen=True)
class ArmResult:
    """One arm's measured means; ``scores`` holds the per-question values of ``metric``."""

    arm: str
    option: str
    pattern: str | None
    metric: float
    grounded: float | None
    p50_ms: float
    p95_ms: float
    cost_per_query_usd: float
    questions: int
    scores: tuple[float | None, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "option": self.option, "pattern": self.pattern,
                "metric": self.metric, "grounded": self.grounded, "p50_ms": self.p50_ms,
                "p95_ms": self.p95_ms, "cost_per_query_usd": self.cost_per_query_usd,
                "questions": self.questions}


@dataclass(frozen=True)
class Measurements:
    path: str
    metric: str
    arms: dict[str, ArmResult]
    baseline: float | None  # the closed-book base arm's metric, when measured

    def difference(self, a: str, b: str) -> dict[str, float] | None:
        """Paired bootstrap of ``metric`` for arm ``a`` minus arm ``b`` (mean, 95% interval)."""
        return paired_bootstrap(list(self.arms[a].scores), list(self.arms[b].scores))

    def by_pattern(self, pattern: str | None) -> ArmResult | None:
        """The arm of a combination's pattern (``serial`` is ``ft+rag``), if measured."""
        return next((r for r in self.arms.values() if pattern and r.pattern == pattern), None)

    def best(self, option: str | None = None, exclude: frozenset[str] = frozenset()
             ) -> ArmResult | None:
        candidates = [r for r in self.arms.values()
                      if (option is None or r.option == option) and r.arm not in exclude]
        return max(candidates, key=lambda r: r.metric, default=None)


def load_report(path: str | Path, metric: str = "f1") -> Measurements:
    """Read ``report.json`` written by ``ragtune compare``; errors name the missing field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"report {p} not found; write one with `ragtune compare ... --out "
                          "DIR` (it writes DIR/report.json)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p} is not a ragtune compare report ({exc})") from None
    summary = data.get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, dict) or not summary:
        raise ConfigError(f"{p}: no 'summary' with arms; is this a `ragtune compare` "
                          "report.json?")
    questions = data.get("questions") or []
    arms: dict[str, ArmResult] = {}
    baseline = None
    for arm, s in summary.items():
        try:
            value = float(s["metrics"][metric]["mean"])
        except (KeyError, TypeError, ValueError):
            valid = sorted(s.get("metrics") or {}) if isinstance(s, dict) else []
            raise ConfigError(f"{p}: summary.{arm}.metrics has no {metric!r}; choose from "
                              + ", ".join(valid)) from None
        if arm == "closed":
            baseline = value
        if arm not in ARM_OPTIONS:
            continue
        option, pattern = ARM_OPTIONS[arm]
        grounded = (s["metrics"].get("grounded") or {}).get("mean")
        scores = tuple(((q.get("arms") or {}).get(arm) or {}).get("scores", {}).get(metric)
                       for q in questions)
        try:
            arms[arm] = ArmResult(
                arm, option, pattern, value, grounded,
                float(s["latency_ms"]["p50"]), float(s["latency_ms"]["p95"]),
                float(s["cost_per_1k"]["usd"]) / 1000, int(s["questions"]), scores)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{p}: summary.{arm} lacks {exc}; rerun `ragtune compare`"
                              ) from None
    if not arms:
        raise ConfigError(f"{p}: no arm the advisor can recommend (has "
                          f"{', '.join(summary)}; needs one of {', '.join(ARM_OPTIONS)})")
    return Measurements(str(p), metric, arms, baseline)
