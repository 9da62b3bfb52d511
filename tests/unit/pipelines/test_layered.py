"""The layered pipeline with fakes: router decisions, judge verdicts and fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from ragtune.errors import ConfigError, RagtuneError
from ragtune.pipelines.judge import ABSTAIN, Judge, is_refusal
from ragtune.pipelines.router import (
    LearnedRouter,
    Route,
    RuleRouter,
    load_router,
    query_features,
    train_router,
)
from ragtune.testing import FakeGenerator
from ragtune.types import Chunk, Hit


def hit(text: str, dense: float | None = 0.5, lexical: float | None = 3.0) -> Hit:
    chunk = Chunk(id=text[:8], source="doc.txt", text=text, start=0, end=len(text))
    return Hit(chunk, score=0.1, dense_score=dense, lexical_score=lexical)


class FixedRouter:
    def __init__(self, strategy: str):
        self.strategy = strategy

    def route(self, question, hits, *, has_tuned, query_vector=None):
        return Route(self.strategy, "fixed for the test")


# -- the rule router ------------------------------------------------------------------

def test_rule_router_uses_sources_when_retrieval_finds_evidence():
    router = RuleRouter(min_dense=0.3)
    assert router.route("q", [hit("a", dense=0.6)], has_tuned=False).strategy == "rag"
    assert router.route("q", [hit("a", dense=0.6)], has_tuned=True).strategy == "serial"


def test_rule_router_without_evidence_answers_from_memory_or_abstains():
    router = RuleRouter(min_dense=0.3)
    weak = [hit("a", dense=0.1), hit("b", dense=0.05)]
    assert router.route("q", weak, has_tuned=True).strategy == "closed"
    decision = router.route("q", weak, has_tuned=False)
    assert decision.strategy == "abstain" and "no evidence" in decision.reason
    assert router.route("q", [], has_tuned=False).strategy == "abstain"


def test_rule_router_takes_a_hit_holding_every_term_of_the_question_as_evidence():
    far = [hit("To start the server, run ragtune serve with your knowledge base.", dense=0.2)]
    decision = RuleRouter(min_dense=0.3).route("How do I start the server?", far,
                                               has_tuned=False)
    assert decision.strategy == "rag" and "every term" in decision.reason
    assert RuleRouter(min_dense=0.3).route("How do I stop the server?", far,
                                           has_tuned=False).strategy == "abstain"


def test_rule_router_lexical_only_hits_count_as_evidence():
    hits = [hit("a", dense=None, lexical=2.0)]
    assert RuleRouter().route("q", hits, has_tuned=False).strategy == "rag"


# -- features and the learned router --------------------------------------------------

def test_query_features_read_the_question_and_the_scores():
    f = query_features("When did Marie Curie win the 1911 prize?",
                       [hit("a", dense=0.7, lexical=9.0), hit("b", dense=0.4, lexical=2.0)])
    assert f["wh_when"] == 1.0 and f["wh_who"] == 0.0 and f["digits"] == 1.0
    assert f["dense_top"] == pytest.approx(0.7) and f["dense_gap"] == pytest.approx(0.3)
    assert f["chinese"] == 0.0 and f["capitalised"] > 0
    zh = query_features("埃菲尔铁塔是什么时候建成的？", [])
    assert zh["chinese"] == 1.0 and zh["wh_when"] == 1.0 and zh["dense_top"] == 0.0


def _separable(n: int = 40):
    """Questions with strong evidence were answered by rag, the rest closed-book."""
    rng = np.random.default_rng(0)
    questions, hits, labels = [], [], []
    for i in range(n):
        strong = i % 2 == 0
        dense = rng.uniform(0.6, 0.9) if strong else rng.uniform(0.0, 0.2)
        questions.append(f"question number {i}?")
        hits.append([hit("x", dense=dense, lexical=8.0 if strong else 0.5)])
        labels.append("rag" if strong else "closed")
    return questions, hits, labels


def test_learned_router_learns_a_separable_rule_and_round_trips(tmp_path):
    questions, hits, labels = _separable()
    router = train_router(questions, hits, labels)
    assert router.info["train_accuracy"] == 1.0
    assert router.info["labels"] == {"rag": 20, "closed": 20}
    path = tmp_path / "router.json"
    router.save(path)
    loaded = load_router(path)
    assert isinstance(loaded, LearnedRouter)
    strong = loaded.route("new question?", [hit("x", dense=0.8, lexical=9.0)], has_tuned=True)
    weak = loaded.route("new question?", [hit("x", dense=0.05, lexical=0.2)], has_tuned=True)
    assert strong.strategy == "rag" and weak.strategy == "closed"
    assert sum(strong.scores.values()) == pytest.approx(1.0)


def test_learned_router_with_query_vectors_checks_their_dimension(tmp_path):
    questions, hits, labels = _separable(20)
    vectors = np.random.default_rng(1).normal(size=(20, 8))
    router = train_router(questions, hits, labels, vectors)
    assert router.use_embedding
    router.route("q", hits[0], has_tuned=False, query_vector=vectors[0])
    with pytest.raises(ConfigError, match="8-d"):
        router.route("q", hits[0], has_tuned=False, query_vector=np.zeros(5))


def test_training_needs_two_strategies_and_known_labels():
    questions, hits, _ = _separable(4)
    with pytest.raises(ConfigError, match="at least two"):
        train_router(questions, hits, ["rag"] * 4)
    with pytest.raises(ConfigError, match="unknown strategies"):
        train_router(questions, hits, ["rag", "closed", "guess", "rag"])


def test_missing_router_file_means_rules_and_a_broken_one_is_an_error(tmp_path):
    assert isinstance(load_router(tmp_path / "none.json"), RuleRouter)
    assert isinstance(load_router(None), RuleRouter)
    broken = tmp_path / "router.json"
    broken.write_text("{not json")
    with pytest.raises(RagtuneError, match="router.json.*retrain"):
        load_router(broken)


# -- the judge ------------------------------------------------------------------------

def test_refusals_are_recognised_in_both_languages():
    assert is_refusal("I do not know.") and is_refusal("The sources do not mention it.")
    assert is_refusal("") and is_refusal("资料中没有提到。") and is_refusal("我不知道")
    assert not is_refusal("The tower was completed in 1889 [1].")


def test_judge_passes_supported_answers_and_fails_the_rest():
    hits = [hit("The Eiffel Tower was completed in 1889.")]
    judge = Judge(threshold=0.5)
    good = judge.judge("The Eiffel Tower was completed in 1889 [1].", hits)
    bad = judge.judge("Bananas are yellow fruit grown in Ecuador.", hits)
    refused = judge.judge("I do not know.", hits)
    assert good.passed and good.score > 0.9
    assert not bad.passed and bad.score < 0.3 and "not supported" in bad.reason
    assert refused.refused and not refused.passed
    assert not judge.judge("1889.", []).passed


# -- the pipeline ---------------------------------------------------------------------

def test_layered_answers_from_sources_when_the_judge_passes(kb):
    answer = kb.ask("How many days of paid vacation?", pipeline="layered")
    assert answer.pipeline == "layered" and not answer.abstained
    assert answer.route["strategy"] == "rag"  # the rule router, no fine-tuned model
    assert "25 days" in answer.text and answer.citations
    assert answer.steps == ("retrieve", "route:rag", "rag", "judge")
    assert [v["strategy"] for v in answer.judge["verdicts"]] == ["rag"]
    assert {"retrieve_ms", "route_ms", "rag_generate_ms", "rag_judge_ms",
            "total_ms"} <= set(answer.timings)


def test_layered_falls_back_from_an_unsupported_closed_answer(kb):
    from ragtune.pipelines import Parts, ask

    tuned = FakeGenerator(reply="Employees get 40 weeks off on the moon.")
    parts = Parts(kb.retriever(), kb.generator, tuned, embedder=kb.embedder,
                       router=FixedRouter("closed"), judge=Judge(0.5))
    answer = ask(parts, "How many days of paid vacation?", "layered")
    verdicts = answer.judge["verdicts"]
    # closed failed the judge; serial (the tuned model over sources) also says the moon
    assert [v["strategy"] for v in verdicts] == ["closed", "serial"]
    assert not any(v["passed"] for v in verdicts)
    assert answer.abstained and answer.text == ABSTAIN["en"] and answer.steps[-1] == "abstain"
    assert answer.adapter is None


def test_layered_fallback_to_rag_passes(kb):
    from ragtune.pipelines import Parts, ask

    parts = Parts(kb.retriever(), kb.generator, None, embedder=kb.embedder,
                       router=FixedRouter("closed"), judge=Judge(0.5))
    # the base model's closed answer is the fake's refusal; rag then answers from source [1]
    answer = ask(parts, "How many days of paid vacation?", "layered")
    verdicts = answer.judge["verdicts"]
    assert [v["strategy"] for v in verdicts] == ["closed", "rag"]
    assert verdicts[0]["refused"] and verdicts[1]["passed"]
    assert not answer.abstained and "25 days" in answer.text


def test_layered_abstain_route_generates_nothing(kb):
    from ragtune.pipelines import Parts, ask

    generator = FakeGenerator()
    parts = Parts(kb.retriever(), generator, None, embedder=kb.embedder,
                       router=FixedRouter("abstain"))
    answer = ask(parts, "What is the airspeed of a swallow?", "layered")
    assert answer.abstained and answer.steps == ("retrieve", "route:abstain", "abstain")
    assert generator.last_messages == [] and answer.completion_tokens == 0


def test_ask_with_a_missing_router_file_is_an_error(kb, tmp_path):
    with pytest.raises(ConfigError, match="router train"):
        kb.ask("How many days?", pipeline="layered", router=tmp_path / "nope.json")
