"""The pipelines with fakes: which model answers, what runs, and real concurrency."""

from __future__ import annotations

import threading

import pytest

from ragtune.errors import ConfigError
from ragtune.pipelines import Parts, ask
from ragtune.testing import FakeGenerator
from ragtune.types import Completion


class MeetingGenerator(FakeGenerator):
    """Drafts only once retrieval has started: run one after the other, it would wait
    out ``timeout`` (and record that it did)."""

    def __init__(self, started: threading.Event, timeout: float = 10.0, **kw):
        super().__init__(**kw)
        self.started, self.timeout = started, timeout
        self.met: list[bool] = []
        self.drafting = threading.Event()

    def generate(self, messages, *, max_tokens=256, temperature=0.0) -> Completion:
        self.drafting.set()
        self.met.append(self.started.wait(self.timeout))
        return super().generate(messages, max_tokens=max_tokens, temperature=temperature)


def test_closed_uses_the_tuned_model_and_no_sources(kb):
    tuned = FakeGenerator(reply="From memory: 25 days.")
    answer = kb.ask("How many vacation days?", pipeline="closed", tuned=tuned)
    assert answer.text == "From memory: 25 days." and answer.citations == ()
    assert answer.pipeline == "closed" and answer.steps == ("generate",)
    assert "Sources" not in tuned.last_messages[-1]["content"]
    assert set(answer.timings) == {"generate_ms", "total_ms"}


def test_rag_keeps_the_base_model_and_serial_the_tuned_one(kb):
    tuned = FakeGenerator(reply="Tuned says 25 days [1].")
    rag = kb.ask("How many days of paid vacation?", pipeline="rag", tuned=tuned)
    serial = kb.ask("How many days of paid vacation?", pipeline="serial", tuned=tuned)
    assert "25 days of paid vacation" in rag.text and rag.adapter is None
    assert serial.text == "Tuned says 25 days [1]."
    assert serial.citations and serial.citations[0].chunk.source.endswith("vacation.txt")
    assert rag.steps == serial.steps == ("retrieve", "prompt", "generate", "cite")
    assert rag.to_dict()["pipeline"] == "rag" and serial.to_dict()["pipeline"] == "serial"


def test_parallel_drafts_while_retrieving_and_reconciles_with_citations(kb):
    retrieving = threading.Event()
    tuned = MeetingGenerator(retrieving, reply="About 20 days.")
    met: list[bool] = []

    class MeetingRetriever:  # retrieval runs while the draft is being written
        def retrieve(self, query, k):
            retrieving.set()
            met.append(tuned.drafting.wait(10.0))
            return kb.search(query, k=k)

    parts = Parts(MeetingRetriever(), kb.generator, tuned, embedder=kb.embedder)
    answer = ask(parts, "How many days of paid vacation?", "parallel")
    assert met == [True] and tuned.met == [True]  # each saw the other under way
    t = answer.timings
    assert t["branches_ms"] >= max(t["draft_ms"], t["retrieve_ms"]) - 1
    reconcile = kb.generator.last_messages[-1]["content"]
    assert "About 20 days." in reconcile and "[1]" in reconcile  # draft beside sources
    assert answer.citations and answer.citations[0].chunk.source.endswith("vacation.txt")
    assert answer.steps == ("draft | retrieve", "prompt", "reconcile", "cite")
    assert answer.pipeline == "parallel"


def test_without_a_tuned_model_every_pipeline_runs_on_the_base(kb):
    for name in ("closed", "rag", "serial", "parallel"):
        answer = kb.ask("When was the Eiffel Tower completed?", pipeline=name)
        assert answer.pipeline == name and answer.adapter is None and answer.text


def test_unknown_pipeline_is_refused(kb):
    with pytest.raises(ConfigError, match="closed, layered, parallel, rag, serial"):
        kb.ask("anything", pipeline="magic")
