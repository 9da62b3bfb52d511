"""``GET /v1/kb``: the knowledge base's name, size and example questions made by rules from
its documents, under the read scope, never naming a server path."""

import json
from pathlib import Path

import pytest

from ragtune import KnowledgeBase
from ragtune.serve.overview import from_table, from_text, subject
from ragtune.testing import FakeEmbedder, FakeGenerator
from ragtune.types import Chunk
from tests.serve.conftest import KEY, make_client


def test_the_overview_names_the_kb_and_asks_about_its_documents(client, kb):
    body = client.get("/v1/kb").json()
    assert body["name"] == "kb" and body["documents"] == 2 and body["chunks"] == 2
    assert body["pipelines"] == client.get("/health").json()["pipelines"]
    asked = {e["source"]: e["question"] for e in body["examples"]}
    assert asked == {"docs/tower.md": "What does tower.md say about the Eiffel Tower?",
                     "docs/vacation.txt": "What does vacation.txt say about every employee?"}
    assert str(kb.path.parent) not in json.dumps(body)  # display names only


def test_an_example_question_finds_its_document(client):
    question = next(e["question"] for e in client.get("/v1/kb").json()["examples"]
                    if e["source"] == "docs/tower.md")
    hits = client.post("/v1/retrieve", json={"query": question, "k": 1}).json()["data"]
    assert hits[0]["source"] == "docs/tower.md"


def test_the_overview_needs_a_key_when_the_server_has_keys(keyed):
    refused = keyed.get("/v1/kb")
    assert refused.status_code == 401 and "key" in refused.json()["error"]["message"].lower()
    ok = keyed.get("/v1/kb", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.json()["documents"] == 2


def test_documents_say_whether_they_are_searchable_and_in_place(client, kb):
    assert {d["status"] for d in client.get("/v1/documents").json()["data"]} == {"indexed"}
    tower = next(r.source for r in kb.sources() if r.source.endswith("tower.md"))
    Path(tower).rename(Path(tower).with_suffix(".moved"))
    status = {d["source"]: d["status"] for d in client.get("/v1/documents").json()["data"]}
    assert status == {"docs/tower.md": "moved", "docs/vacation.txt": "indexed"}


def test_a_table_asks_for_its_total_in_the_first_period(tmp_path):
    from tests.unit.documents.test_tables import statement_kb

    base, _ = statement_kb(tmp_path)
    with make_client(base) as c:
        body = c.get("/v1/kb").json()
    assert body["pages"] == 1
    assert body["examples"] == [{
        "question": "What were total net sales in the three months ended June 25, 2022?",
        "source": "filings/q3.pdf"}]


def test_an_empty_kb_has_no_examples(tmp_path):
    base = KnowledgeBase.create(tmp_path / "empty", embedder=FakeEmbedder(),
                                generator=FakeGenerator())
    with make_client(base) as c:
        body = c.get("/v1/kb").json()
    assert body["documents"] == 0 and body["examples"] == []


@pytest.mark.parametrize(("sentence", "expected"), [
    ("The Eiffel Tower was completed in 1889.", "the Eiffel Tower"),
    ("Every employee receives 25 days of paid vacation.", "every employee"),
    ("Refunds are paid within 30 days.", "Refunds"),  # one word: it may be a name
    ("Plain notes have no pages.", "plain notes"),
    ("Acme Corp has three plants.", "Acme Corp"),
    ("Run pip install ragtune.", None),  # no verb a rule can tell
    ("A very long subject with far too many words in it is here.", None),
])
def test_the_subject_of_a_first_sentence(sentence, expected):
    assert subject(sentence) == expected


def chunk(text, **fields):
    return Chunk(id="c", source="s", text=text, start=0, end=len(text), **fields)


def test_a_heading_is_the_topic_and_a_question_heading_is_kept():
    assert from_text(chunk("Run it.", heading="Installation"), "guide.md") == \
        "What does guide.md say about Installation?"
    assert from_text(chunk("Yes.", heading="Can I return a gift?"), "faq.md") == \
        "Can I return a gift?"
    assert from_text(chunk("no sentence here"), "x.txt") is None


def test_a_table_without_figures_gives_no_question():
    header = "| | Q1 |"
    assert from_table(chunk("| Name | Alice |", kind="table", context=header)) is None
    assert from_table(chunk("| Revenue | 12 |", kind="table", context=header)) == \
        "What was revenue in the Q1?"
