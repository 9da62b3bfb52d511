"""From a profile (and measurements) to a recommendation, its reasons, costs and roadmap.

The rules in :mod:`ragtune.advise.rules` each push towards retrieval or fine-tuning; a side
whose weights reach :data:`NEED` is needed, and both needed make a combination. Measurements
from a ``ragtune compare`` report outrank the questionnaire where they disagree with a
paired-bootstrap interval that excludes zero, and the advice says so.

Example::

    advice = advise(Profile(change="weekly", expertise="lookup", sources="required"))
    advice.recommendation   # "rag"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragtune.advise import rules
from ragtune.advise.costs import OPTIONS, CostModel, Estimate, break_even, estimate
from ragtune.advise.measured import Measurements
from ragtune.advise.profile import Profile
from ragtune.advise.rules import Reason

NEED = 3  # summed weight at which a side is needed
GROUNDED_DROP = 0.10  # with sources required, an arm this far below RAG's groundedness is out
ASSUMED_QUERIES_PER_MONTH = 10_000  # for the cost table when the volume is not given
PATTERNS = ("serial", "parallel", "layered", "raft")


@dataclass(frozen=True)
class Step:
    """One stage of the roadmap with the commands that carry it out."""

    code: str
    commands: tuple[str, ...]
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "commands": list(self.commands), "done": self.done}


@dataclass(frozen=True)
class Advice:
    recommendation: str  # rag | finetune | combination
    pattern: str | None  # for a combination: serial | parallel | layered | raft
    start_with: str  # what to build now (rag while collecting data for fine-tuning)
    scores: dict[str, int]
    reasons: tuple[Reason, ...]
    assumptions: tuple[Reason, ...]
    conflicts: tuple[Reason, ...]
    estimates: dict[str, Estimate]
    break_even: float
    roadmap: tuple[Step, ...]
    profile: Profile
    costs: CostModel
    measured: Measurements | None = None
    questionnaire: tuple[str, str | None] | None = None  # before measurements, if they changed it

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation, "pattern": self.pattern,
            "start_with": self.start_with, "scores": self.scores,
            "reasons": [r.to_dict() for r in self.reasons],
            "assumptions": [r.to_dict() for r in self.assumptions],
            "conflicts": [r.to_dict() for r in self.conflicts],
            "estimates": {k: v.to_dict() for k, v in self.estimates.items()},
            "break_even_queries_per_month": (None if self.break_even == float("inf")
                                             else self.break_even),
            "currency": self.costs.currency,
            "roadmap": [s.to_dict() for s in self.roadmap],
            "next": next((s.to_dict() for s in self.roadmap if not s.done), None),
            "profile": self.profile.to_dict(),
            "measured": None if self.measured is None else {
                "report": self.measured.path, "metric": self.measured.metric,
                "baseline": self.measured.baseline,
                "arms": {k: v.to_dict() for k, v in self.measured.arms.items()}},
            "questionnaire": (None if self.questionnaire is None else
                              {"recommendation": self.questionnaire[0],
                               "pattern": self.questionnaire[1]}),
        }


def _assumptions(p: Profile) -> list[Reason]:
    """What a missing field means for the advice (it does not vote; costs assume a value)."""
    out = []
    for name in p.missing():
        evidence: dict[str, Any] = {}
        if name == "queries_per_month":
            evidence = {"assumed": ASSUMED_QUERIES_PER_MONTH}
        elif name == "change":
            evidence = {"assumed_retrains_per_year": rules.retrains_per_year(None)}
        out.append(Reason(name, f"assume_{name}", evidence=evidence, assumed=True))
    return out


def _conflicts(reasons: list[Reason], scores: dict[str, int]) -> list[Reason]:
    constraints = {r.constraint for r in reasons if r.constraint}
    out = []
    if rules.MUST_RETRIEVE in constraints and rules.NO_RETRIEVAL in constraints:
        out.append(Reason("conflict", "conflict_sources_latency"))
    if rules.NO_FINETUNE in constraints and scores["finetune"] >= NEED:
        out.append(Reason("conflict", "conflict_expertise_budget",
                          evidence={"finetune_weight": scores["finetune"]}))
    if rules.NO_RETRIEVAL in constraints and rules.MUST_RETRIEVE not in constraints \
            and scores["rag"] >= NEED:
        out.append(Reason("conflict", "conflict_fresh_latency",
                          evidence={"rag_weight": scores["rag"]}))
    return out


def _decide(reasons: list[Reason]) -> tuple[str, dict[str, int]]:
    scores = {"rag": sum(r.weight for r in reasons if r.favours == "rag"),
              "finetune": sum(r.weight for r in reasons if r.favours == "finetune")}
    constraints = {r.constraint for r in reasons if r.constraint}
    needs_rag = scores["rag"] >= NEED or rules.MUST_RETRIEVE in constraints
    needs_ft = scores["finetune"] >= NEED and rules.NO_FINETUNE not in constraints
    if needs_rag and needs_ft:
        return "combination", scores
    if needs_ft:
        return "finetune", scores
    return "rag", scores


def _pattern(p: Profile, costs: CostModel, latency: dict[str, float]) -> tuple[str, Reason]:
    """Which combination: the latency budget first, then the mix of questions, then data."""
    fits = [pat for pat in PATTERNS
            if p.latency_ms is None or latency.get(pat, costs.latency_ms("combination", pat))
            <= p.latency_ms]
    ev = {"latency_ms": p.latency_ms, "fits": fits}
    if not fits:
        fastest = min(PATTERNS, key=lambda x: latency.get(x, costs.latency_ms("combination", x)))
        return fastest, Reason("pattern", "pattern_fastest", evidence=ev)
    if p.expertise == "mixed" and "layered" in fits:
        return "layered", Reason("pattern", "pattern_layered", evidence=ev)
    if (p.sources == "required" and (p.labelled or 0) >= rules.MIN_FINETUNE_EXAMPLES
            and "raft" in fits):
        return "raft", Reason("pattern", "pattern_raft", evidence={
            **ev, "labelled": p.labelled})
    if "serial" in fits:
        return "serial", Reason("pattern", "pattern_serial", evidence=ev)
    return fits[0], Reason("pattern", f"pattern_{fits[0]}", evidence=ev)


def _eligible(m: Measurements, p: Profile) -> tuple[frozenset[str], list[Reason]]:
    """Arms the measurements rule out: too slow for the budget, or ungrounded when it matters."""
    out: set[str] = set()
    reasons = []
    rag = m.arms.get("rag")
    for r in m.arms.values():
        if p.latency_ms is not None and r.p95_ms > p.latency_ms:
            out.add(r.arm)
            reasons.append(Reason("measured", "measured_too_slow", measured=True, evidence={
                "arm": r.arm, "p95_ms": r.p95_ms, "latency_ms": p.latency_ms}))
        elif p.sources == "required" and r.option == "finetune":
            out.add(r.arm)
            reasons.append(Reason("measured", "measured_no_sources", measured=True,
                                  evidence={"arm": r.arm}))
        elif (p.sources == "required" and rag is not None and r.grounded is not None
              and rag.grounded is not None and r.grounded < rag.grounded - GROUNDED_DROP):
            out.add(r.arm)
            reasons.append(Reason("measured", "measured_ungrounded", measured=True, evidence={
                "arm": r.arm, "grounded": r.grounded, "rag_grounded": rag.grounded}))
    return frozenset(out), reasons


def _apply_measurements(m: Measurements, p: Profile, option: str, pattern: str | None
                        ) -> tuple[str, str | None, list[Reason]]:
    excluded, reasons = _eligible(m, p)
    best = m.best(exclude=excluded)
    if best is None:
        reasons.append(Reason("measured", "measured_none_eligible", measured=True))
        return option, pattern, reasons
    mine = (m.by_pattern(pattern) if option == "combination" else None) \
        or m.best(option, exclude=excluded)
    ev: dict[str, Any] = {"metric": m.metric, "best": best.arm, "best_value": best.metric,
                          "baseline": m.baseline}
    if mine is None:
        reasons.append(Reason("measured", "measured_option_missing", measured=True,
                              evidence={**ev, "option": option}))
        return option, pattern, reasons
    ev.update(mine=mine.arm, mine_value=mine.metric)
    if best.arm == mine.arm:
        reasons.append(Reason("measured", "measured_agrees", best.option, rules.STRONG, ev,
                              measured=True))
        return option, pattern if best.pattern is None else best.pattern, reasons
    interval = m.difference(best.arm, mine.arm)
    ev["difference"] = interval
    if interval is not None and interval["low"] > 0:
        reasons.append(Reason("measured", "measured_outranks", best.option, rules.STRONG, ev,
                              measured=True))
        return best.option, best.pattern, reasons
    reasons.append(Reason("measured", "measured_tie", None, 0, ev, measured=True))
    return option, pattern, reasons


def _estimates(p: Profile, costs: CostModel, pattern: str | None,
               m: Measurements | None) -> dict[str, Estimate]:
    volume = p.queries_per_month if p.queries_per_month is not None \
        else ASSUMED_QUERIES_PER_MONTH
    retrains = rules.retrains_per_year(p.change)
    out = {}
    for option in OPTIONS:
        arm = None
        if m is not None:
            arm = (m.by_pattern(pattern) if option == "combination" else None) \
                or m.best(option)
        # a combination retrains for skills and style, not for facts: the knowledge is retrieved
        n = retrains if option == "finetune" else (1.0 if option == "combination" else 0.0)
        out[option] = estimate(
            costs, option, queries_per_month=volume, retrains_per_year=n,
            per_query=None if arm is None else arm.cost_per_query_usd * costs.usd_rate,
            latency_ms=None if arm is None else arm.p50_ms,
            pattern=pattern if option == "combination" else None)
    return out


def _roadmap(option: str, pattern: str | None, start_with: str, p: Profile,
             m: Measurements | None, kb: str, base: str) -> tuple[Step, ...]:
    """The article's path (start with RAG, collect data, fine-tune, combine) with commands."""
    rag = Step("step_rag", (f"ragtune ingest DOCS --kb {kb}",
                            f'ragtune ask "A QUESTION" --kb {kb}'),
               done="kb" in p.measured or m is not None)
    enough = (p.labelled or 0) >= rules.MIN_FINETUNE_EXAMPLES
    collect = Step("step_collect", (
        "ragtune eval split QUESTIONS.jsonl --by question --out split",),
        done=enough or m is not None)
    qlora = " --qlora" if p.gpu else ""
    tune = Step("step_finetune", (
        "ragtune tune prepare TRAIN.jsonl --out prepared --split 0.1 --group-by source",
        f"ragtune tune lora --base {base} --data prepared --out ft-run{qlora}"),
        done=m is not None and "ft" in m.arms)
    combine_cmds = {
        "serial": (f'ragtune ask "A QUESTION" --kb {kb} --pipeline serial --adapter ft-run',),
        "parallel": (f'ragtune ask "A QUESTION" --kb {kb} --pipeline parallel '
                     "--adapter ft-run",),
        "layered": (f"ragtune router train --from report/report.json --kb {kb}",
                    f'ragtune ask "A QUESTION" --kb {kb} --pipeline layered --adapter ft-run'),
        "raft": (f"ragtune raft build --kb {kb} --qa split/train.jsonl --out raft-data",
                 f"ragtune tune lora --base {base} --data raft-data --out raft-run{qlora}",
                 f'ragtune ask "A QUESTION" --kb {kb} --pipeline serial --adapter raft-run'),
    }
    arms = {"rag": "closed,rag", "finetune": "closed,ft,rag",
            "combination": "closed,rag,ft,ft+rag" + (f",{pattern}" if pattern in
                                                      ("raft", "parallel", "layered") else "")}
    adapters = "" if option == "rag" else " --adapter ft=ft-run" + (
        " --adapter raft=raft-run" if pattern == "raft" else "")
    measure = Step("step_measure", (
        f"ragtune compare --kb {kb} --dataset split/test.jsonl --arms {arms[option]}"
        f"{adapters} --out report",
        "ragtune advise --profile advise.toml --from-report report/report.json"),
        done=m is not None and all(a in m.arms for a in arms[option].split(",")[1:]))
    if option == "rag":
        return rag, collect, measure
    if option == "finetune":
        steps = (collect, tune, measure)
        return ((rag, *steps) if start_with == "rag" else steps)
    return (rag, collect, tune,
            Step(f"step_combine_{pattern}", combine_cmds[pattern or "serial"]), measure)


def advise(profile: Profile, *, costs: CostModel | None = None,
           measurements: Measurements | None = None, kb: str = "kb",
           base: str = "smollm2-135m-instruct") -> Advice:
    """The recommendation for ``profile``; ``measurements`` outrank it where they disagree."""
    costs = costs or CostModel()
    latency: dict[str, float] = {}
    q: dict[str, float] = {}
    if measurements is not None:
        for option in ("rag", "finetune"):
            best = measurements.best(option)
            if best is not None:
                latency[option] = best.p50_ms
                q[option] = best.cost_per_query_usd * costs.usd_rate
        for r in measurements.arms.values():
            if r.pattern:
                latency[r.pattern] = r.p50_ms
    reasons = [*rules.freshness(profile), *rules.expertise(profile),
               *rules.traceability(profile),
               *rules.volume(profile, costs, q.get("rag"), q.get("finetune")),
               *rules.budget(profile, costs), *rules.latency(profile, costs, latency or None),
               *rules.labelled_data(profile), *rules.hardware(profile), *rules.wording(profile)]
    option, scores = _decide(reasons)
    conflicts = _conflicts(reasons, scores)
    pattern = None
    if option == "combination":
        pattern, why = _pattern(profile, costs, latency)
        reasons.append(why)
    before = (option, pattern)
    if measurements is not None:
        option, pattern, measured = _apply_measurements(measurements, profile, option, pattern)
        reasons.extend(measured)
        if option == "combination" and pattern is None:
            pattern, why = _pattern(profile, costs, latency)
            reasons.append(why)
        if option != "combination":
            pattern = None
    constraints = {r.constraint for r in reasons if r.constraint}
    start_with = option
    if option != "rag" and (rules.COLLECT_FIRST in constraints
                            or rules.NO_FINETUNE in constraints):
        start_with = "rag"
    return Advice(
        recommendation=option, pattern=pattern, start_with=start_with, scores=scores,
        reasons=tuple(reasons), assumptions=tuple(_assumptions(profile)),
        conflicts=tuple(conflicts),
        estimates=_estimates(profile, costs, pattern, measurements),
        break_even=break_even(costs, retrains_per_year=rules.retrains_per_year(profile.change),
                              rag_per_query=q.get("rag"), finetune_per_query=q.get("finetune")),
        roadmap=_roadmap(option, pattern, start_with, profile, measurements, kb, base),
        profile=profile, costs=costs, measured=measurements,
        questionnaire=before if before != (option, pattern) else None)
