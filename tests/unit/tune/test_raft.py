"""RAFT data from a knowledge base (fake embedder, word tokenizer): oracles, distractors,
p-oracle, answer styles, exclusion, generated questions and the command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragtune import KnowledgeBase
from ragtune.cli import app
from ragtune.errors import ConfigError
from ragtune.evaluate.datasets import QAItem
from ragtune.evaluate.metrics import final_answer
from ragtune.testing import FakeEmbedder, FakeGenerator
from ragtune.tune import data as tune_data
from ragtune.tune.raft import build_raft, generate_questions

runner = CliRunner()

FACTS = {
    "tower.md": "The Eiffel Tower was completed in 1889. It is made of wrought iron.",
    "bridge.md": "The Golden Gate Bridge was completed in 1937. It is painted orange.",
    "wall.md": "The Great Wall was completed over many dynasties. It is made of stone.",
    "canal.md": "The Panama Canal was completed in 1914. It joins two oceans.",
    "dam.md": "The Hoover Dam was completed in 1936. It is made of concrete.",
}


class WordTokenizer:
    def apply_chat_template(self, conversation, *, tokenize=True, add_generation_prompt=False):
        return " ".join(m["content"] for m in conversation).split()


@pytest.fixture
def kb(tmp_path, monkeypatch):
    monkeypatch.setattr(tune_data, "load_tokenizer", lambda base: WordTokenizer())
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text)
    base = KnowledgeBase.create(tmp_path / "kb", embedder=FakeEmbedder(),
                                generator=FakeGenerator())
    base.ingest([folder])
    return base


ITEMS = [
    QAItem("t", "When was the Eiffel Tower completed?", ("1889",), "tower.md", doc="tower"),
    QAItem("b", "What colour is the Golden Gate Bridge painted?", ("orange",), doc="bridge"),
    QAItem("c", "When was the Panama Canal completed?", ("1914",), "canal.md", doc="canal"),
    QAItem("d", "What is the Hoover Dam made of?", ("concrete",), doc="dam"),
    QAItem("x", "Who built the moon base?", ("Zorg",), doc="moon"),
]


def _examples(out):
    rows = []
    for name in ("train.jsonl", "eval.jsonl"):
        rows += [json.loads(x) for x in (out / name).read_text().splitlines()]
    return rows


def test_every_example_holds_the_oracle_among_hard_distractors(kb, tmp_path):
    out = tmp_path / "raft"
    info = build_raft(kb, ITEMS, out, distractors=2, p_oracle=1.0, eval_split=0.0)
    raft = json.loads((out / "raft.json").read_text())
    assert raft["written"] == 4 and raft["with_oracle"] == 4
    assert raft["no_oracle_found"] == 1 and raft["no_oracle_found_ids"] == ["x"]
    assert raft["oracle_located_by"] == {"source": 2, "answer text": 2}
    assert info["counts"]["train"] == 4
    for row in _examples(out):
        prompt, answer = row["messages"][-2]["content"], row["messages"][-1]["content"]
        assert row["messages"][0]["role"] == "system"
        assert prompt.count("\n[") + prompt.startswith("[") == 3  # oracle + 2 distractors
        quoted = answer.split('"')[1]
        n = answer.split("[")[1].split("]")[0]
        assert quoted in prompt.split(f"[{n}]")[1]  # the quote is in the cited source
        assert final_answer(answer) in {"1889", "orange", "1914", "concrete"}


def test_p_oracle_drops_the_oracle_from_some_examples(kb, tmp_path):
    many = [QAItem(f"t{i}", f"When was the Eiffel Tower completed? ({i})", ("1889",),
                   "tower.md", doc=f"d{i}") for i in range(40)]
    build_raft(kb, many, tmp_path / "raft", distractors=2, p_oracle=0.5, eval_split=0.0,
               answer_style="plain")
    raft = json.loads((tmp_path / "raft" / "raft.json").read_text())
    assert 10 <= raft["with_oracle"] <= 30 and raft["unanswerable"] == "abstain"
    rows = _examples(tmp_path / "raft")
    without = [r for r in rows if "1889" not in r["messages"][-2]["content"]]
    assert len(without) == 40 - raft["with_oracle"]
    # without the oracle the model is taught to say so
    assert all(r["messages"][-1]["content"] == "The sources do not say." for r in without)
    with_oracle = [r for r in rows if r not in without]
    assert all(r["messages"][-1]["content"].startswith("1889 [") for r in with_oracle)


def test_unanswerable_answer_keeps_the_papers_answer_from_memory(kb, tmp_path):
    many = [QAItem(f"t{i}", f"When was the Eiffel Tower completed? ({i})", ("1889",),
                   "tower.md", doc=f"d{i}") for i in range(20)]
    build_raft(kb, many, tmp_path / "raft", distractors=2, p_oracle=0.0, eval_split=0.0,
               answer_style="plain", unanswerable="answer")
    assert all(r["messages"][-1]["content"] == "1889" for r in _examples(tmp_path / "raft"))
    with pytest.raises(ConfigError, match="unanswerable"):
        build_raft(kb, many, tmp_path / "raft2", unanswerable="guess")


def test_evaluation_questions_are_excluded_and_counted(kb, tmp_path):
    held = [QAItem("other-id", "when was the eiffel tower completed", ("1889",)),
            QAItem("c", "anything", ("x",))]
    build_raft(kb, ITEMS, tmp_path / "raft", exclude=held, eval_split=0.0)
    raft = json.loads((tmp_path / "raft" / "raft.json").read_text())
    assert raft["excluded"] == 2 and raft["written"] == 2
    questions = " ".join(r["messages"][-2]["content"] for r in _examples(tmp_path / "raft"))
    assert "Eiffel" not in questions.split("Question")[-1]


def test_bad_options_and_nothing_to_write_are_errors(kb, tmp_path):
    with pytest.raises(ConfigError, match="answer style"):
        build_raft(kb, ITEMS, tmp_path / "r", answer_style="poem")
    with pytest.raises(ConfigError, match="p-oracle"):
        build_raft(kb, ITEMS, tmp_path / "r", p_oracle=1.5)
    with pytest.raises(ConfigError, match="without an oracle chunk"):
        build_raft(kb, ITEMS[-1:], tmp_path / "r")


def test_generated_pairs_are_checked_against_their_chunk(kb):
    reply = ('{"question": "When was it completed?", "answer": "1889"}\n'
             '{"question": "Who designed it?", "answer": "Gustave Eiffel"}\n'
             "not json at all\n{broken")
    items, counts = generate_questions(kb, FakeGenerator(reply=reply), per_chunk=2,
                                       max_chunks=1)
    assert counts["chunks"] == 1 and counts["unparsed"] == 1
    # "1889" is kept only where the sampled chunk holds it; "Gustave Eiffel" never is
    assert counts["answer_not_in_chunk"] >= 1
    assert all(i.chunk_ids and i.answers[0] == "1889" for i in items)


def test_raft_build_command(tmp_path, monkeypatch):
    monkeypatch.setattr(tune_data, "load_tokenizer", lambda base: WordTokenizer())
    monkeypatch.setenv("RAGTUNE_EMBEDDER_BACKEND", "fake")
    monkeypatch.setenv("RAGTUNE_GENERATOR_BACKEND", "fake")
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text)
    assert runner.invoke(app, ["ingest", str(folder), "--kb", str(tmp_path / "kb")]).exit_code == 0
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(i.to_dict()) + "\n" for i in ITEMS))
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps(ITEMS[0].to_dict()) + "\n")
    result = runner.invoke(app, ["raft", "build", "--kb", str(tmp_path / "kb"), "--qa", str(qa),
                                 "--exclude", str(test), "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "1 excluded as evaluation questions" in result.output
    assert (tmp_path / "data" / "train.jsonl").is_file()
    result = runner.invoke(app, ["raft", "build", "--kb", str(tmp_path / "kb"),
                                 "--out", str(tmp_path / "d2")])
    assert isinstance(result.exception, ConfigError)
