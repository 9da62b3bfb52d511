"""``ragtune chat`` driven through piped standard input, with the ``fake`` backends."""

import json

import pytest
from typer.testing import CliRunner

from ragtune.cli import app

runner = CliRunner()


@pytest.fixture
def kb(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGTUNE_EMBEDDER_BACKEND", "fake")
    monkeypatch.setenv("RAGTUNE_GENERATOR_BACKEND", "fake")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vacation.txt").write_text("Every employee of Acme receives 25 days of paid "
                                       "vacation per year.")
    (docs / "sick.txt").write_text("Every employee of Acme receives 10 sick days per year.")
    folder = str(tmp_path / "kb")
    assert runner.invoke(app, ["ingest", str(docs), "--kb", folder]).exit_code == 0
    return folder


QUESTIONS = ("How many vacation days does an employee of Acme get per year?\n"
             "What about sick days?\n")


def test_chat_rewrites_the_follow_up_and_shows_it(kb):
    result = runner.invoke(app, ["chat", "--kb", kb], input=QUESTIONS + "/sources 1\n/quit\n"
                           "never asked\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "(searching for: How many sick days does an employee of Acme get per year?)" in out
    assert out.count("Sources:") == 2 and "sick.txt" in out and "vacation.txt" in out
    assert "turn 1: How many vacation days" in out  # /sources 1: the first turn's citations
    assert "never asked" not in out  # /quit ended the conversation


def test_chat_json_gives_one_object_per_turn_with_its_citations(kb):
    result = runner.invoke(app, ["chat", "--kb", kb, "--json"], input=QUESTIONS)
    assert result.exit_code == 0, result.output
    decoder, text, turns = json.JSONDecoder(), result.output.strip(), []
    while text:
        turn, end = decoder.raw_decode(text)
        turns.append(turn)
        text = text[end:].strip()
    assert [t["turn"] for t in turns] == [1, 2]
    assert [t["rewrite"] for t in turns] == ["first", "ellipsis"]
    assert turns[1]["asked"] == "What about sick days?"
    assert turns[1]["citations"][0]["source"].endswith("sick.txt")
    assert turns[0]["citations"][0]["source"].endswith("vacation.txt")


def test_sources_of_a_turn_that_does_not_exist_says_which_exist(kb):
    result = runner.invoke(app, ["chat", "--kb", kb], input="/sources 3\n")
    assert "/sources takes a turn number from 1 to 0" in result.output
