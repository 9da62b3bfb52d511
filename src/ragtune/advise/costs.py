"""The cost model: initial, monthly and maintenance cost per option, and the break-even volume.

Every figure is a field of :class:`CostModel`, so a user can see it and override it
(``ragtune advise --costs costs.toml``). Ranges are ``(low, high)`` in the model's currency.
The defaults are the article's figures (CNY):

=============  ===============  ==============  ==========================
option         initial          monthly         maintenance
=============  ===============  ==============  ==========================
RAG            20-50k           5-20k           re-ingesting: near zero
fine-tuning    100-300k         3-10k           50-100k per retraining
combination    150-400k         8-30k           50-100k per retraining
=============  ===============  ==============  ==========================

Per-query cost on top of the monthly base comes from tokens: a RAG prompt carries the
retrieved passages, a fine-tuned model's prompt does not, which is where fine-tuning pays
back its training at high volume (:func:`break_even`). Latency per request defaults to the
article's RAG figure (retrieval 100 ms + generation 200 ms) and the same step times for the
other options; a ``ragtune compare`` report replaces both with measurements.

Example::

    model = CostModel()
    estimate(model, "rag", queries_per_month=100_000, retrains_per_year=0).monthly
    break_even(model, retrains_per_year=1)  # queries per month
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ragtune.advise.profile import read_toml
from ragtune.errors import ConfigError

Range = tuple[float, float]

OPTIONS = ("rag", "finetune", "combination")
MONTHS_PER_YEAR = 12


@dataclass(frozen=True)
class CostModel:
    """Transparent, overridable costs; see the module docstring for where the defaults come from."""

    currency: str = "CNY"
    rag_initial: Range = (20_000, 50_000)
    rag_monthly: Range = (5_000, 20_000)
    finetune_initial: Range = (100_000, 300_000)
    finetune_monthly: Range = (3_000, 10_000)
    finetune_retrain: Range = (50_000, 100_000)
    combination_initial: Range = (150_000, 400_000)
    combination_monthly: Range = (8_000, 30_000)
    combination_retrain: Range = (50_000, 100_000)
    # tokens per request: retrieved passages make the RAG prompt long; a fine-tuned model
    # needs only the question and a short instruction
    rag_prompt_tokens: float = 1_500
    finetune_prompt_tokens: float = 150
    completion_tokens: float = 200
    price_prompt_per_1m: float = 2.0  # per million prompt tokens
    price_completion_per_1m: float = 8.0
    # latency per request (ms): the article's RAG figure is retrieval 100 + generation 200
    retrieval_ms: float = 100
    generation_ms: float = 200
    finetune_generation_ms: float = 180  # the shorter prompt prefills faster
    reconcile_ms: float = 50  # parallel: merging the draft with the sources
    route_ms: float = 10  # layered: the router
    horizon_months: int = 24  # over which the initial cost is paid back
    usd_rate: float = 7.2  # currency units per USD, for measured costs in a compare report

    @classmethod
    def load(cls, path: str | Path | None) -> CostModel:
        """Defaults, overridden by the keys of a TOML file (``[costs]`` table or top level)."""
        if path is None:
            return cls()
        data = read_toml(path, "cost model", "see docs/advise.md for its fields")
        return cls.from_mapping(data.get("costs", data), where=str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "costs") -> CostModel:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown cost field(s) {', '.join(unknown)}; valid: "
                              + ", ".join(known))
        values: dict[str, Any] = {}
        default = cls()
        for key, value in data.items():
            current = getattr(default, key)
            try:
                if isinstance(current, tuple):
                    low, high = (value, value) if isinstance(value, int | float) else value
                    values[key] = (float(low), float(high))
                    if values[key][0] > values[key][1] or values[key][0] < 0:
                        raise ValueError("low must be <= high and >= 0")
                elif isinstance(current, str):
                    values[key] = str(value)
                elif isinstance(current, int):
                    values[key] = int(value)
                    if values[key] <= 0:
                        raise ValueError("must be positive")
                else:
                    values[key] = float(value)
                    if values[key] < 0:
                        raise ValueError("must not be negative")
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}: {key} = {value!r} is not valid ({exc}); expected "
                                  f"{'[low, high]' if isinstance(current, tuple) else 'a number'}"
                                  f" like {current!r}") from None
        return replace(default, **values)

    def per_query(self, option: str) -> float:
        """Token cost of one request (currency units)."""
        prompt = self.finetune_prompt_tokens if option == "finetune" else self.rag_prompt_tokens
        return (prompt * self.price_prompt_per_1m
                + self.completion_tokens * self.price_completion_per_1m) / 1e6

    def latency_ms(self, option: str, pattern: str | None = None) -> float:
        """Default latency per request (ms) for an option, or a combination's pattern."""
        if option == "finetune":
            return self.finetune_generation_ms
        if option == "rag" or pattern in (None, "serial", "raft"):
            return self.retrieval_ms + self.generation_ms
        if pattern == "parallel":  # the draft and retrieval run at once
            return max(self.retrieval_ms, self.finetune_generation_ms) + self.reconcile_ms
        if pattern == "layered":  # worst case: routed to retrieval
            return self.route_ms + self.retrieval_ms + self.generation_ms
        raise ConfigError(f"unknown pattern {pattern!r}; choose from serial, parallel, layered, "
                          "raft")


@dataclass(frozen=True)
class Estimate:
    """One option's cost: ranges for initial, monthly (base + queries) and yearly maintenance."""

    option: str
    initial: Range
    monthly: Range
    maintenance_per_year: Range
    per_query: float
    retrains_per_year: float
    latency_ms: float
    measured: bool = False  # per-query cost and latency come from a compare report

    def total(self, months: int) -> Range:
        """Initial plus ``months`` of running and maintenance."""
        return tuple(i + months * (m + y / MONTHS_PER_YEAR) for i, m, y in zip(
            self.initial, self.monthly, self.maintenance_per_year, strict=True))  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.option, "initial": list(self.initial),
                "monthly": list(self.monthly),
                "maintenance_per_year": list(self.maintenance_per_year),
                "per_query": self.per_query, "retrains_per_year": self.retrains_per_year,
                "latency_ms": self.latency_ms, "measured": self.measured}


def _scaled(r: Range, k: float) -> Range:
    return (r[0] * k, r[1] * k)


def _plus(r: Range, x: float) -> Range:
    return (r[0] + x, r[1] + x)


def mid(r: Range) -> float:
    return (r[0] + r[1]) / 2


def estimate(model: CostModel, option: str, *, queries_per_month: float,
             retrains_per_year: float, per_query: float | None = None,
             latency_ms: float | None = None, pattern: str | None = None) -> Estimate:
    """The cost of one option at a query volume; ``per_query``/``latency_ms`` if measured."""
    if option not in OPTIONS:
        raise ConfigError(f"unknown option {option!r}; choose from {', '.join(OPTIONS)}")
    measured = per_query is not None or latency_ms is not None
    q = model.per_query(option) if per_query is None else per_query
    retrain: Range = (0.0, 0.0) if option == "rag" else getattr(model, f"{option}_retrain")
    return Estimate(
        option=option,
        initial=getattr(model, f"{option}_initial"),
        monthly=_plus(getattr(model, f"{option}_monthly"), q * queries_per_month),
        maintenance_per_year=_scaled(retrain, retrains_per_year if option != "rag" else 0),
        per_query=q,
        retrains_per_year=retrains_per_year if option != "rag" else 0.0,
        latency_ms=model.latency_ms(option, pattern) if latency_ms is None else latency_ms,
        measured=measured)


def break_even(model: CostModel, *, retrains_per_year: float,
               rag_per_query: float | None = None,
               finetune_per_query: float | None = None) -> float:
    """Queries per month above which fine-tuning costs less than RAG over the horizon.

    Solves ``I_rag + H (M_rag + V q_rag) = I_ft + H (M_ft + V q_ft) + H/12 n R_ft`` for ``V``
    with the midpoints of the ranges. ``inf`` when fine-tuning's per-query cost is not lower;
    ``0`` when fine-tuning is cheaper at any volume.
    """
    h = model.horizon_months
    q_rag = model.per_query("rag") if rag_per_query is None else rag_per_query
    q_ft = model.per_query("finetune") if finetune_per_query is None else finetune_per_query
    fixed = (mid(model.finetune_initial) - mid(model.rag_initial)
             + h * (mid(model.finetune_monthly) - mid(model.rag_monthly))
             + h / MONTHS_PER_YEAR * retrains_per_year * mid(model.finetune_retrain))
    saving = h * (q_rag - q_ft)
    if fixed <= 0:
        return 0.0
    if saving <= 0:
        return math.inf
    return fixed / saving
