"""The advisor: the article's three cases, conflicts, missing answers, costs and measurements."""

import json
import math

import pytest
from typer.testing import CliRunner

from ragtune.advise import (
    CostModel,
    Profile,
    advise,
    ask_missing,
    break_even,
    estimate,
    render,
    rules,
)
from ragtune.advise.measure import change_history
from ragtune.advise.measured import load_report
from ragtune.advise.profile import change_level
from ragtune.advise.text import MESSAGES, explain
from ragtune.cli import app
from ragtune.errors import ConfigError

runner = CliRunner()

# The article's three cases: (profile, recommendation, pattern or None)
CASES = {
    "product documentation chatbot": (
        dict(change="weekly", expertise="lookup", sources="required", queries_per_month=30_000,
             latency_ms=2000, labelled=50, gpu=False), "rag", None),
    "law-firm judgment summaries": (
        dict(change="yearly", expertise="expert", sources="not-needed",
             queries_per_month=20_000, labelled=3_000, gpu=True), "finetune", None),
    "financial news analysis": (
        dict(change="daily", expertise="expert", sources="required",
             queries_per_month=100_000, latency_ms=3000, labelled=1_000), "combination", "raft"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_articles_three_cases(case):
    values, option, pattern = CASES[case]
    advice = advise(Profile(**values))
    assert (advice.recommendation, advice.pattern) == (option, pattern)
    assert advice.reasons and all(r.code in MESSAGES["en"] for r in advice.reasons)


def test_reasons_carry_their_dimension_and_evidence():
    advice = advise(Profile(**CASES["product documentation chatbot"][0]))
    by_dim = {r.dimension: r for r in advice.reasons}
    assert by_dim["change"].favours == "rag" and by_dim["change"].weight == rules.STRONG
    assert by_dim["sources"].constraint == rules.MUST_RETRIEVE
    assert by_dim["data"].constraint == rules.COLLECT_FIRST
    assert by_dim["volume"].evidence["break_even"] > 30_000
    assert "30,000 queries a month" in explain(by_dim["volume"])


def test_fine_tuning_with_too_little_data_starts_with_rag():
    advice = advise(Profile(change="static", expertise="expert", sources="not-needed",
                            labelled=120))
    assert advice.recommendation == "finetune" and advice.start_with == "rag"
    assert advice.roadmap[0].code == "step_rag"
    assert [s.code for s in advice.roadmap if not s.done][:2] == ["step_rag", "step_collect"]


def test_budget_rules_fine_tuning_out_and_says_so():
    advice = advise(Profile(change="static", expertise="expert", budget_initial=60_000))
    assert advice.recommendation == "rag"
    assert [c.code for c in advice.conflicts] == ["conflict_expertise_budget"]


def test_sources_required_with_no_time_for_retrieval_is_a_conflict():
    advice = advise(Profile(expertise="expert", sources="required", latency_ms=250))
    assert advice.recommendation == "combination"
    assert advice.pattern == "parallel"  # the only pattern within 250 ms by the cost model
    assert "conflict_sources_latency" in [c.code for c in advice.conflicts]


def test_tight_latency_alone_points_to_fine_tuning():
    advice = advise(Profile(expertise="lookup", latency_ms=200))
    assert advice.recommendation == "finetune"


def test_mixed_questions_pick_the_layered_pattern():
    advice = advise(Profile(change="daily", expertise="mixed", sources="preferred"))
    assert advice.recommendation == "combination" and advice.pattern == "layered"


def test_an_empty_profile_says_what_it_assumed():
    advice = advise(Profile())
    assert advice.recommendation == "rag"  # cheapest to start, and it collects the data
    assumed = {r.dimension for r in advice.assumptions}
    assert assumed == {"change", "expertise", "sources", "queries_per_month", "budget_initial",
                       "budget_monthly", "latency_ms", "labelled", "gpu"}
    assert "10,000 queries a month" in render(advice)


def test_break_even_solves_the_cost_equation():
    m = CostModel()
    v = break_even(m, retrains_per_year=2)
    h = m.horizon_months
    rag = 35_000 + h * (12_500 + v * m.per_query("rag"))
    ft = 200_000 + h * (6_500 + v * m.per_query("finetune")) + h / 12 * 2 * 75_000
    assert rag == pytest.approx(ft)
    cheaper_tokens = CostModel(finetune_prompt_tokens=1_500)
    assert math.isinf(break_even(cheaper_tokens, retrains_per_year=1))


def test_estimates_add_queries_and_retraining():
    m = CostModel()
    e = estimate(m, "finetune", queries_per_month=1_000_000, retrains_per_year=4)
    assert e.monthly == (3_000 + 1e6 * m.per_query("finetune"),
                         10_000 + 1e6 * m.per_query("finetune"))
    assert e.maintenance_per_year == (200_000, 400_000)
    assert e.total(12)[0] == pytest.approx(100_000 + 12 * e.monthly[0] + 200_000)
    assert estimate(m, "rag", queries_per_month=0, retrains_per_year=4).maintenance_per_year \
        == (0, 0)


def test_cost_model_overrides_and_errors(tmp_path):
    path = tmp_path / "costs.toml"
    path.write_text('currency = "USD"\nrag_initial = [3000, 7000]\nfinetune_retrain = 9000\n')
    m = CostModel.load(path)
    assert m.currency == "USD" and m.rag_initial == (3000, 7000)
    assert m.finetune_retrain == (9000, 9000)
    path.write_text("rag_intial = [1, 2]\n")
    with pytest.raises(ConfigError, match="unknown cost field.*rag_intial.*valid: currency"):
        CostModel.load(path)
    path.write_text("rag_initial = [9, 2]\n")
    with pytest.raises(ConfigError, match="rag_initial.*low must be <= high"):
        CostModel.load(path)


@pytest.mark.parametrize("data, message", [
    ({"change": "fortnightly"}, "change = 'fortnightly' is not one of hourly, daily"),
    ({"latency_ms": "fast"}, "latency_ms = 'fast' is not a number"),
    ({"labelled": -3}, "labelled = -3 must be a number >= 0"),
    ({"gpu": "maybe"}, "gpu = 'maybe' is not yes or no"),
    ({"volume": 3}, "unknown field.*volume.*valid:"),
])
def test_profile_errors_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        Profile.from_mapping(data)


def test_profile_round_trips_through_toml(tmp_path):
    p = Profile(change="weekly", expertise="mixed", queries_per_month=5e4, gpu=False,
                question_overlap=0.42, measured=("question_overlap", "kb"))
    path = tmp_path / "advise.toml"
    path.write_text(p.to_toml())
    assert Profile.load(path) == p
    assert "question_overlap = 0.42  # measured" in p.to_toml()


def test_questionnaire_asks_only_what_is_missing_and_re_asks_bad_answers():
    asked, told = [], []
    answers = iter(["lookup", "perhaps", "required", "", "0", "800", "40", "no"])

    def ask(q):
        asked.append(q)
        return next(answers)

    p = ask_missing(Profile(change="weekly"), ask, tell=told.append)
    assert not any(q.startswith("1.") for q in asked)  # change was known
    assert p.expertise == "lookup" and p.sources == "required" and p.latency_ms == 800
    assert p.queries_per_month is None and p.labelled == 40 and p.gpu is False
    assert told and "sources = 'perhaps' is not one of" in told[0]


def test_questionnaire_in_chinese():
    asked = []
    ask_missing(Profile(), lambda q: asked.append(q) or "", lang="zh")
    assert asked[0].startswith("1. 知识多久更新一次") and len(asked) == 8
    answers = iter(["每周", "专家", "必须", "", "", "", "", "否"])
    p = ask_missing(Profile(), lambda q: next(answers), lang="zh")
    assert (p.change, p.expertise, p.sources, p.gpu) == ("weekly", "expert", "required", False)


def test_change_level_and_history():
    assert [change_level(d) for d in (0.02, 1, 6, 30, 90, 400, 5000)] == [
        "hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "static"]
    day = 86_400
    history = [{"operation": "ingest", "time": 0, "added": 10},
               {"operation": "ingest", "time": 7 * day, "updated": 2},
               {"operation": "remove", "time": 14 * day, "removed": 1},
               {"operation": "reembed", "time": 15 * day},
               {"operation": "ingest", "time": 21 * day, "added": 3}]
    h = change_history(history)
    assert h["changes"] == 4 and h["median_days"] == 7
    assert h["sources_updated_or_removed"] == 3 and h["sources_added_later"] == 3
    assert change_history(history[:1])["median_days"] is None


def _report(tmp_path, arms):
    """A compare report with per-question F1 for each arm: {arm: (scores, p95_ms)}."""
    n = len(next(iter(arms.values()))[0])
    summary = {a: {"questions": n, "metrics": {"f1": {"mean": sum(s) / n},
                                               "grounded": {"mean": 0.6}},
                   "latency_ms": {"p50": p95 / 2, "p95": p95},
                   "cost_per_1k": {"usd": 0.05}} for a, (s, p95) in arms.items()}
    questions = [{"id": str(i), "arms": {a: {"scores": {"f1": s[i]}} for a, (s, _) in
                                         arms.items()}} for i in range(n)]
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"config": {}, "summary": summary, "questions": questions}))
    return path


def test_measurements_outrank_the_questionnaire(tmp_path):
    path = _report(tmp_path, {"closed": ([0.0] * 40, 300), "rag": ([0.3] * 40, 900),
                              "ft+rag": ([0.5] * 40, 1000), "ft": ([0.1] * 40, 200)})
    profile = Profile(change="weekly", expertise="lookup", sources="required")
    advice = advise(profile, measurements=load_report(path))
    assert (advice.recommendation, advice.pattern) == ("combination", "serial")
    assert advice.questionnaire == ("rag", None)
    outrank = next(r for r in advice.reasons if r.code == "measured_outranks")
    assert outrank.evidence["difference"]["low"] > 0
    assert "outranks the questionnaire" in render(advice)
    assert advice.estimates["rag"].measured and advice.estimates["rag"].latency_ms == 450


def test_a_difference_inside_the_noise_keeps_the_questionnaire(tmp_path):
    rag, both = [0.0, 1.0] * 20, [1.0, 0.0] * 20
    both[1] = 1.0  # one more right answer: 0.525 against 0.5
    path = _report(tmp_path, {"rag": (rag, 900), "ft+rag": (both, 1000)})
    advice = advise(Profile(change="weekly", sources="required"),
                    measurements=load_report(path))
    assert advice.recommendation == "rag"
    assert any(r.code == "measured_tie" for r in advice.reasons)


def test_measured_latency_rules_out_slow_arms(tmp_path):
    path = _report(tmp_path, {"rag": ([0.3] * 10, 900), "ft+rag": ([0.9] * 10, 5000)})
    advice = advise(Profile(sources="required", latency_ms=1000),
                    measurements=load_report(path))
    assert advice.recommendation == "rag"
    assert any(r.code == "measured_too_slow" and r.evidence["arm"] == "ft+rag"
               for r in advice.reasons)


def test_a_bad_report_names_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="not found; write one with `ragtune compare"):
        load_report(tmp_path / "none.json")
    path = _report(tmp_path, {"rag": ([0.3], 900)})
    with pytest.raises(ConfigError, match="has no 'bleu'; choose from f1, grounded"):
        load_report(path, metric="bleu")
    path.write_text('{"rows": []}')
    with pytest.raises(ConfigError, match="no 'summary' with arms"):
        load_report(path)


def test_cli_advise_json_and_profile_file(tmp_path):
    profile = tmp_path / "advise.toml"
    profile.write_text('change = "daily"\nexpertise = "expert"\nsources = "required"\n')
    result = runner.invoke(app, ["advise", "--profile", str(profile), "--labelled", "900",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recommendation"] == "combination" and data["pattern"] == "raft"
    assert data["profile"]["labelled"] == 900  # the flag adds to the file
    assert data["next"]["code"] == "step_rag"
    assert "ragtune raft build" in " ".join(
        c for s in data["roadmap"] for c in s["commands"])


def test_cli_advise_interactive_in_chinese():
    result = runner.invoke(app, ["advise", "--interactive", "--lang", "zh"],
                           input="daily\nexpert\nrequired\n\n\n\n2000\n是\n")
    assert result.exit_code == 0, result.output
    assert "建议: 组合方案" in result.stdout and "路线图" in result.stdout


def test_cli_advise_rejects_bad_flags():
    result = runner.invoke(app, ["advise", "--change", "sometimes", "--no-interactive"])
    assert result.exit_code != 0
    assert "change = 'sometimes' is not one of" in str(result.exception) + result.output


def test_cli_profile_measures_the_knowledge_base(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGTUNE_EMBEDDER_BACKEND", "fake")
    monkeypatch.setenv("RAGTUNE_GENERATOR_BACKEND", "fake")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The warranty lasts two years from the date of purchase.")
    kb = str(tmp_path / "kb")
    assert runner.invoke(app, ["ingest", str(docs), "--kb", kb]).exit_code == 0
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "warranty lasts years", "answers": ["two years"]}\n'
                         '{"question": "Michelangelo ceiling", "answers": ["1512"]}\n')
    out = tmp_path / "advise.toml"
    result = runner.invoke(app, ["profile", "--kb", kb, "--data", str(questions),
                                 "--questions", str(questions), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["facts"]["knowledge_base"]["sources"] == 1
    assert data["profile"]["labelled"] == 2
    # every term of the first question is in the passage, none of the second's
    assert data["profile"]["question_overlap"] == 0.5
    assert Profile.load(out).labelled == 2
    result = runner.invoke(app, ["advise", "--profile", str(out), "--no-interactive", "--kb",
                                 kb])
    assert result.exit_code == 0 and "Only 2 labelled examples" in result.stdout
