"""The evaluation harness with the fake backends: datasets, splits, scores checked against
independent implementations, resume, reports, gates and router training from a report."""

from __future__ import annotations

import collections
import json
import re
import string

import numpy as np
import pytest
from typer.testing import CliRunner

from ragtune.cli import app
from ragtune.errors import ConfigError, DataError
from ragtune.evaluate.datasets import QAItem, load_qa, split_items
from ragtune.evaluate.harness import check_gates, parse_arms, parse_gates
from ragtune.evaluate.metrics import exact_match, rouge_l, token_f1
from ragtune.evaluate.scoring import paired_bootstrap, score_answer

runner = CliRunner()


# -- the official SQuAD v1.1 evaluation script's definitions, verbatim in substance ----

def _squad_normalize(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _squad_f1(prediction, ground_truth):
    prediction_tokens = _squad_normalize(prediction).split()
    ground_truth_tokens = _squad_normalize(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def _squad_em(prediction, ground_truth):
    return _squad_normalize(prediction) == _squad_normalize(ground_truth)


CASES = [
    ("The Eiffel Tower", ["Eiffel Tower", "the tower"]),
    ("in 1889, when it opened", ["1889"]),
    ("Denver Broncos won the game", ["Denver Broncos", "Broncos"]),
    ("nothing relevant here", ["Santa Clara"]),
    ("an apple a day", ["apple day"]),
    ("Carolina Panthers.", ["Carolina Panthers"]),
]


@pytest.mark.parametrize("prediction,golds", CASES)
def test_em_and_f1_match_the_official_squad_script(prediction, golds):
    assert exact_match(prediction, golds) == float(max(_squad_em(prediction, g) for g in golds))
    assert token_f1(prediction, golds) == pytest.approx(
        max(_squad_f1(prediction, g) for g in golds))


@pytest.mark.parametrize("prediction,golds", CASES)
def test_rouge_l_matches_rouge_score(prediction, golds):
    from rouge_score import rouge_scorer

    from ragtune.evaluate.metrics import tokens

    class SquadTokens:  # the same normalisation, so the LCS and F-measure are what is checked
        def tokenize(self, text):
            return tokens(text)

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=SquadTokens())
    expected = max(scorer.score(g, prediction)["rougeL"].fmeasure for g in golds)
    assert rouge_l(prediction, golds) == pytest.approx(expected, abs=1e-6)


def test_paired_bootstrap_interval_covers_the_difference_and_skips_undefined():
    rng = np.random.default_rng(0)
    a = list(rng.random(200) + 0.1)
    b = list(rng.random(200))
    ci = paired_bootstrap(a, b, samples=1000)
    assert ci["low"] < ci["diff"] < ci["high"] and ci["n"] == 200
    assert ci["diff"] == pytest.approx(np.mean(np.array(a) - np.array(b)))
    assert paired_bootstrap([1.0, None], [0.0, 1.0])["n"] == 1
    assert paired_bootstrap([None], [None]) is None
    same = paired_bootstrap([0.5] * 30, [0.5] * 30)
    assert same["low"] == same["high"] == 0.0


# -- datasets and splits --------------------------------------------------------------

def test_qa_jsonl_errors_name_the_line_and_field(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q1", "answers": ["a"]}\n{"question": "", "answers": []}\n')
    with pytest.raises(DataError, match=r"qa.jsonl, line 2: field 'question'"):
        load_qa(path)
    path.write_text('{"question": "q1", "answers": ["a"]}\n{"question": "q2"\n')
    with pytest.raises(DataError, match=r"line 2: not valid JSON"):
        load_qa(path)
    path.write_text('{"question": "q1"}\n')
    with pytest.raises(DataError, match="'answers' is missing"):
        load_qa(path)
    path.write_bytes(b'{"question": "caf\xe9"}')
    with pytest.raises(DataError, match="not UTF-8"):
        load_qa(path)


def test_squad_v2_loads_unanswerable_questions(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Tower", "paragraphs": [{
        "context": "The tower opened in 1889.",
        "qas": [{"id": "a", "question": "When did it open?", "is_impossible": False,
                 "answers": [{"text": "1889", "answer_start": 20}]},
                {"id": "b", "question": "Who painted it?", "is_impossible": True,
                 "answers": []}]}]}]}))
    data = load_qa(path)
    assert data.kind == "squad-v2" and [i.answerable for i in data.items] == [True, False]
    assert data.items[0].source == "Tower-000" and data.documents["Tower-000"].startswith("The")


def _items(docs: int = 6, per_doc: int = 4) -> list[QAItem]:
    return [QAItem(f"{d}-{q}", f"question {q} on doc {d}?", ("x",), f"doc{d}.txt",
                   doc=f"doc{d}") for d in range(docs) for q in range(per_doc)]


def test_split_by_question_keeps_documents_on_both_sides():
    train, test = split_items(_items(), "question", 0.5, seed=1)
    assert len(train) == len(test) == 12
    assert {i.doc for i in train} == {i.doc for i in test}
    assert not {i.id for i in train} & {i.id for i in test}


def test_split_by_document_never_shares_a_document():
    train, test = split_items(_items(), "document", 0.5, seed=1)
    assert not {i.doc for i in train} & {i.doc for i in test}
    assert len(train) + len(test) == 24 and test


# -- scores ---------------------------------------------------------------------------

def test_scores_of_answers_citations_and_abstention():
    item = QAItem("1", "When?", ("1889",), source="tower.md")
    record = {"answer": "It opened in 1889 [1].", "abstained": False,
              "citations": [{"id": "c1", "source": "/kb/docs/tower.md"},
                            {"id": "c2", "source": "/kb/docs/other.md"}],
              "context": ["The tower opened in 1889.", "Other text."]}
    s = score_answer(item, record, support=lambda text, ctx: 0.75)
    # the [1] marker is not part of the answer that is scored
    assert s["em"] == 0.0 and s["f1"] == pytest.approx(_squad_f1("It opened in 1889.", "1889"))
    assert score_answer(item, {**record, "answer": "1889 [1]"})["em"] == 1.0
    assert s["citation_precision"] == 0.5 and s["citation_recall"] == 1.0
    assert s["grounded"] == 0.75 and s["abstain_wrong"] == 0.0 and s["abstain_right"] is None
    declined = score_answer(item, {"answer": "I do not know.", "citations": [],
                                   "context": ["x"]})
    assert declined["f1"] == 0.0 and declined["abstain_wrong"] == 1.0
    assert declined["grounded"] is None and declined["citation_precision"] is None
    impossible = QAItem("2", "Who painted it?", ())
    right = score_answer(impossible, {"answer": "x", "abstained": True})
    assert right["abstain_right"] == 1.0 and right["f1"] is None


def test_arms_and_gates_are_checked():
    with pytest.raises(ConfigError, match="--adapter ft=RUN"):
        parse_arms("rag,ft", {})
    with pytest.raises(ConfigError, match="unknown arm 'rgа'|unknown arm"):
        parse_arms("rag,rgа", {})
    assert [a.pipeline for a in parse_arms("closed,ft+rag", {"ft": "run"})] == [
        "closed", "serial"]
    with pytest.raises(ConfigError, match="ARM.METRIC=VALUE"):
        parse_gates(["f1>0.3"])
    summary = {"rag": {"metrics": {"f1": {"mean": 0.25}}}}
    assert check_gates(summary, parse_gates(["rag.f1=0.2"])) == []
    assert check_gates(summary, parse_gates(["rag.f1=0.3"])) == ["rag.f1 = 0.2500 < 0.3"]
    assert "no arm" in check_gates(summary, parse_gates(["ft.f1=0.1"]))[0]


# -- the commands, end to end with the fake backends ----------------------------------

@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("RAGTUNE_EMBEDDER_BACKEND", "fake")
    monkeypatch.setenv("RAGTUNE_GENERATOR_BACKEND", "fake")


@pytest.fixture
def kb_and_qa(env, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.txt").write_text("The warranty lasts two years from purchase.")
    (docs / "returns.md").write_text("Items can be returned within 30 days.")
    (docs / "tower.md").write_text("The Eiffel Tower was completed in 1889.")
    kb = tmp_path / "kb"
    assert runner.invoke(app, ["ingest", str(docs), "--kb", str(kb)]).exit_code == 0
    qa = tmp_path / "qa.jsonl"
    rows = [
        {"id": "w", "question": "How long does the warranty last?",
         "answers": ["two years"], "source": "warranty.txt"},
        {"id": "r", "question": "Within how many days can items be returned?",
         "answers": ["30 days"], "source": "returns.md"},
        {"id": "t", "question": "When was the Eiffel Tower completed?",
         "answers": ["1889"], "source": "tower.md"},
        {"id": "u", "question": "What colour is the moon base?", "answers": []},
    ]
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return kb, qa


def test_compare_writes_reports_resumes_and_gates(kb_and_qa, tmp_path):
    kb, qa = kb_and_qa
    out = tmp_path / "report"
    args = ["compare", "--kb", str(kb), "--dataset", str(qa), "--arms", "closed,rag,layered",
            "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    rag = report["summary"]["rag"]["metrics"]
    closed = report["summary"]["closed"]["metrics"]
    # the fake answers with source [1]'s first sentence: recall of the gold answers
    assert rag["f1"]["mean"] > 0.3 and rag["citation_recall"]["mean"] == 1.0
    assert closed["f1"]["mean"] == 0.0  # the fake says "I do not know" without sources
    assert closed["f1"]["vs_reference"]["diff"] < 0 and "vs_reference" not in rag["f1"]
    assert report["summary"]["layered"]["routes"]
    assert {"retrieve", "generate"} <= set(report["summary"]["rag"]["latency_ms"]["steps"])
    html = (out / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html and "<script" not in html
    assert "| rag |" in (out / "report.md").read_text()
    assert len((out / "answers" / "rag.jsonl").read_text().splitlines()) == 4

    # rerun: everything cached, nothing answered again; a gate below the mean passes
    before = (out / "answers" / "rag.jsonl").stat().st_mtime_ns
    again = runner.invoke(app, [*args, "--fail-under", "rag.f1=0.1"])
    assert again.exit_code == 0, again.output
    assert (out / "answers" / "rag.jsonl").stat().st_mtime_ns == before
    missed = runner.invoke(app, [*args, "--fail-under", "rag.f1=0.99"])
    assert missed.exit_code == 2 and "gate missed: rag.f1" in missed.output

    # other settings are refused instead of mixed with the cached answers
    changed = runner.invoke(app, [*args, "-k", "2"])
    assert isinstance(changed.exception, ConfigError)
    assert "other settings (k changed)" in str(changed.exception)


def test_interrupted_run_continues_with_the_cached_answers(kb_and_qa, tmp_path):
    kb, qa = kb_and_qa
    out = tmp_path / "report"
    args = ["eval", "qa", "--kb", str(kb), "--dataset", str(qa), "--pipeline", "rag",
            "--out", str(out), "--json"]
    assert runner.invoke(app, [*args, "--limit", "2"]).exit_code == 0
    cache = out / "answers" / "rag.jsonl"
    first = cache.read_text().splitlines()
    cache.write_text("\n".join(first) + '\n{"id": "r", "answ')  # a line cut by a kill
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in cache.read_text().splitlines()[len(first) + 1:]]
    assert [r["id"] for r in lines] == ["t", "u"]  # only what was missing was answered
    assert json.loads(result.stdout)["summary"]["rag"]["questions"] == 4


def test_eval_retrieval_and_split(kb_and_qa, tmp_path):
    kb, qa = kb_and_qa
    result = runner.invoke(app, ["eval", "retrieval", "--kb", str(kb), "--dataset", str(qa),
                                 "-k", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["queries"] == 3 and data["mean"]["recall@1"] == 1.0
    out = tmp_path / "split"
    result = runner.invoke(app, ["eval", "split", str(qa), "--out", str(out), "--by",
                                 "document", "--test", "0.34"])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "split.json").read_text())
    assert info["by"] == "document" and info["shared_documents"] == 0


def test_router_trains_from_a_compare_report(kb_and_qa, tmp_path):
    kb, qa = kb_and_qa
    out = tmp_path / "report"
    assert runner.invoke(app, ["compare", "--kb", str(kb), "--dataset", str(qa), "--arms",
                               "closed,rag", "--out", str(out)]).exit_code == 0
    # the fake's answers (a whole source sentence) have F1 0.4-0.5 against short golds
    result = runner.invoke(app, ["router", "train", "--from", str(out / "report.json"),
                                 "--kb", str(kb), "--correct-f1", "0.3"])
    assert result.exit_code == 0, result.output
    assert "(rag 2, abstain 1)" in result.output  # the tower answer scores F1 0.25
    assert "1 answerable question no arm got right left out" in result.output
    assert (kb / "router.json").is_file()
    answer = runner.invoke(app, ["ask", "How long does the warranty last?", "--kb", str(kb),
                                 "--pipeline", "layered", "--json"])
    data = json.loads(answer.output)
    assert data["route"]["reason"].startswith("learned router")
    bad = tmp_path / "bad.json"
    bad.write_text('{"questions": [{"question": "q"}]}')
    result = runner.invoke(app, ["router", "train", "--from", str(bad), "--kb", str(kb)])
    assert isinstance(result.exception, ConfigError)
    assert "not a `ragtune compare` report" in str(result.exception)


def test_compare_is_one_call_in_python(kb_and_qa, tmp_path):
    from ragtune import KnowledgeBase
    from ragtune.config import load_settings
    from ragtune.evaluate import compare

    kb, qa = kb_and_qa
    with KnowledgeBase.open(kb, load_settings(None)) as base:  # the fakes, from the env
        with pytest.raises(ConfigError, match="adapter ft=nowhere: nowhere does not exist"):
            compare(base, qa, "rag,ft", tmp_path / "x", adapters={"ft": "nowhere"})
        result = compare(base, qa, ["closed", "rag"], tmp_path / "report",
                         fail_under=["rag.f1=0.1", "closed.f1=0.5"])
    assert set(result.summary) == {"closed", "rag"}
    assert result.summary["rag"]["metrics"]["f1"]["mean"] > 0.3
    assert result.gates_missed == ["closed.f1 = 0.0000 < 0.5"]  # the fake knows nothing alone
    assert {p.name for p in result.report.values()} == {"report.json", "report.md",
                                                         "report.html"}
    assert json.loads(result.report["json"].read_text())["summary"] == result.summary
