"""The decision rules: small pure functions, one per dimension, each returning its reasons.

A :class:`Reason` says which way a dimension pushes (``rag`` or ``finetune``), how strongly
(:data:`WEAK` 1, :data:`MODERATE` 2, :data:`STRONG` 3) and on what evidence; a few also set
a hard constraint (retrieval must stay in the path, fine-tuning is out of budget). The
thresholds are named constants so that a reader can see and question them. They follow the
article's decision tree: knowledge that changes often or answers that must show their sources
call for retrieval; expertise and style, high volume and tight latency call for fine-tuning;
both sets at once call for a combination.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ragtune.advise.costs import CostModel, break_even
from ragtune.advise.profile import CHANGE_DAYS, Profile

WEAK, MODERATE, STRONG = 1, 2, 3

FRESH_DAYS = 7  # knowledge changing at least weekly: retraining cannot keep up
MONTHLY_DAYS = 31
QUARTERLY_DAYS = 92
MIN_FINETUNE_EXAMPLES = 500  # below this a LoRA run learns style poorly; collect first
GOOD_FINETUNE_EXAMPLES = 2_000
HIGH_OVERLAP = 0.6  # questions reuse the documents' words: retrieval finds the passage
LOW_OVERLAP = 0.3  # paraphrased or reasoning questions: retrieval alone often misses
RETRAIN_CAP_PER_YEAR = 12  # nobody retrains more than monthly; fresher knowledge needs RAG

# hard constraints a rule can set
MUST_RETRIEVE = "must_retrieve"  # answers must cite sources
NO_FINETUNE = "no_finetune"  # fine-tuning's initial cost exceeds the budget
COLLECT_FIRST = "collect_first"  # too few labelled examples to fine-tune yet
NO_RETRIEVAL = "no_retrieval"  # the latency budget leaves no time for retrieval


@dataclass(frozen=True)
class Reason:
    """One dimension's push: ``favours`` is ``rag``, ``finetune`` or ``None`` (neutral)."""

    dimension: str
    code: str  # the message template, see :mod:`ragtune.advise.text`
    favours: str | None = None
    weight: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    constraint: str | None = None
    measured: bool = False
    assumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "code": self.code, "favours": self.favours,
                "weight": self.weight, "evidence": self.evidence,
                "constraint": self.constraint, "measured": self.measured,
                "assumed": self.assumed}


def retrains_per_year(change: str | None) -> float:
    """How often a fine-tuned model must be retrained to keep up with its knowledge."""
    days = CHANGE_DAYS.get(change or "", math.inf)
    if math.isinf(days):
        return 1.0  # style and skills drift too; the article budgets a yearly refresh
    return min(RETRAIN_CAP_PER_YEAR, max(1.0, 365 / days))


def freshness(p: Profile) -> list[Reason]:
    if p.change is None:
        return []
    days = CHANGE_DAYS[p.change]
    ev = {"change": p.change, "retrains_per_year": retrains_per_year(p.change)}
    measured = "change" in p.measured
    if days <= FRESH_DAYS:
        return [Reason("change", "change_fast", "rag", STRONG, ev, measured=measured)]
    if days <= MONTHLY_DAYS:
        return [Reason("change", "change_monthly", "rag", MODERATE, ev, measured=measured)]
    if days <= QUARTERLY_DAYS:
        return [Reason("change", "change_quarterly", "rag", WEAK, ev, measured=measured)]
    return [Reason("change", "change_stable", "finetune", WEAK, ev, measured=measured)]


def expertise(p: Profile) -> list[Reason]:
    if p.expertise == "expert":
        return [Reason("expertise", "expertise_expert", "finetune", STRONG)]
    if p.expertise == "mixed":  # the expert part needs training, the lookups retrieval
        return [Reason("expertise", "expertise_mixed", "finetune", STRONG),
                Reason("expertise", "expertise_mixed_lookups", "rag", WEAK)]
    if p.expertise == "lookup":
        return [Reason("expertise", "expertise_lookup", "rag", WEAK)]
    return []


def traceability(p: Profile) -> list[Reason]:
    if p.sources == "required":
        return [Reason("sources", "sources_required", "rag", STRONG, constraint=MUST_RETRIEVE)]
    if p.sources == "preferred":
        return [Reason("sources", "sources_preferred", "rag", WEAK)]
    if p.sources == "not-needed":
        return [Reason("sources", "sources_not_needed")]
    return []


def volume(p: Profile, costs: CostModel, rag_per_query: float | None = None,
           finetune_per_query: float | None = None) -> list[Reason]:
    if p.queries_per_month is None:
        return []
    v = break_even(costs, retrains_per_year=retrains_per_year(p.change),
                   rag_per_query=rag_per_query, finetune_per_query=finetune_per_query)
    ev = {"queries_per_month": p.queries_per_month, "break_even": v,
          "currency": costs.currency}
    measured = rag_per_query is not None or finetune_per_query is not None
    if p.queries_per_month >= v:
        return [Reason("volume", "volume_high", "finetune", MODERATE, ev, measured=measured)]
    return [Reason("volume", "volume_low", "rag", WEAK, ev, measured=measured)]


def budget(p: Profile, costs: CostModel) -> list[Reason]:
    reasons = []
    if p.budget_initial is not None:
        ev = {"budget_initial": p.budget_initial, "finetune_initial": costs.finetune_initial,
              "rag_initial": costs.rag_initial, "currency": costs.currency}
        if p.budget_initial < costs.finetune_initial[0]:
            reasons.append(Reason("budget", "budget_no_finetune", "rag", STRONG, ev,
                                  constraint=NO_FINETUNE))
        elif p.budget_initial < costs.rag_initial[0]:
            reasons.append(Reason("budget", "budget_below_rag", None, 0, ev))
    if p.budget_monthly is not None:
        ev = {"budget_monthly": p.budget_monthly, "rag_monthly": costs.rag_monthly,
              "finetune_monthly": costs.finetune_monthly, "currency": costs.currency}
        if costs.finetune_monthly[0] <= p.budget_monthly < costs.rag_monthly[0]:
            reasons.append(Reason("budget", "budget_monthly_tight", "finetune", WEAK, ev))
        elif p.budget_monthly < min(costs.finetune_monthly[0], costs.rag_monthly[0]):
            reasons.append(Reason("budget", "budget_monthly_below_all", None, 0, ev))
    return reasons


def latency(p: Profile, costs: CostModel, measured: dict[str, float] | None = None
            ) -> list[Reason]:
    """``measured``: latency (ms) per option from a report, else the cost model's defaults."""
    if p.latency_ms is None:
        return []
    with_retrieval = (measured or {}).get("rag", costs.latency_ms("rag"))
    without = (measured or {}).get("finetune", costs.latency_ms("finetune"))
    ev = {"latency_ms": p.latency_ms, "rag_ms": with_retrieval, "finetune_ms": without}
    is_measured = bool(measured)
    if p.latency_ms < without:
        return [Reason("latency", "latency_none_fits", "finetune", WEAK, ev,
                       measured=is_measured)]
    if p.latency_ms < with_retrieval:
        return [Reason("latency", "latency_no_retrieval", "finetune", STRONG, ev,
                       constraint=NO_RETRIEVAL, measured=is_measured)]
    return [Reason("latency", "latency_fits", None, 0, ev, measured=is_measured)]


def labelled_data(p: Profile) -> list[Reason]:
    if p.labelled is None:
        return []
    ev = {"labelled": p.labelled, "minimum": MIN_FINETUNE_EXAMPLES,
          "good": GOOD_FINETUNE_EXAMPLES}
    if p.labelled < MIN_FINETUNE_EXAMPLES:
        return [Reason("data", "data_too_little", "rag", WEAK, ev, constraint=COLLECT_FIRST,
                       measured="labelled" in p.measured)]
    if p.labelled >= GOOD_FINETUNE_EXAMPLES:
        return [Reason("data", "data_plenty", "finetune", WEAK, ev,
                       measured="labelled" in p.measured)]
    return [Reason("data", "data_enough", None, 0, ev, measured="labelled" in p.measured)]


def hardware(p: Profile) -> list[Reason]:
    if p.gpu is False:
        return [Reason("gpu", "gpu_none")]
    if p.gpu:
        return [Reason("gpu", "gpu_yes")]
    return []


def wording(p: Profile) -> list[Reason]:
    if p.question_overlap is None:
        return []
    ev = {"question_overlap": p.question_overlap}
    if p.question_overlap >= HIGH_OVERLAP:
        return [Reason("wording", "overlap_high", "rag", WEAK, ev, measured=True)]
    if p.question_overlap < LOW_OVERLAP:
        return [Reason("wording", "overlap_low", "finetune", WEAK, ev, measured=True)]
    return [Reason("wording", "overlap_mid", None, 0, ev, measured=True)]


def questionnaire(p: Profile, costs: CostModel) -> list[Reason]:
    """All the rules that read only the profile, in the article's order of dimensions."""
    return [*freshness(p), *expertise(p), *traceability(p), *volume(p, costs), *budget(p, costs),
            *latency(p, costs), *labelled_data(p), *hardware(p), *wording(p)]
