"""Scoped keys and document ownership against a live server on 127.0.0.1 (fake models):
read keys cannot change documents, write keys change only their own collection's, admin
keys any; citations name sources relative to the knowledge base, never by server path."""

import json

import httpx
import pytest

from ragtune import KnowledgeBase
from ragtune.errors import ConfigError
from ragtune.serve import ServeSettings, create_app
from ragtune.serve.keys import parse_key
from ragtune.testing import FakeEmbedder, FakeGenerator
from tests.serve.conftest import LiveServer, make_client

ADMIN, ALICE, BOB, READER = "admin-key-1", "alice-key-2", "bob-key-3", "reader-key-4"
ENTRIES = (ADMIN, f"{ALICE}:write:alice", f"{BOB}:write:bob", f"{READER}:read")


def as_key(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def live(kb):
    app = create_app(ServeSettings(kb=kb.path, api_keys=ENTRIES, max_upload_mb=0.01), kb=kb)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def upload(http, key, name, text):
    return http.post("/v1/documents", headers=as_key(key),
                     files={"file": (name, text.encode(), "text/plain")})


def documents(http):
    return {d["source"]: d for d in http.get("/v1/documents", headers=as_key(READER))
            .json()["data"]}


def ask(http, key, question):
    return http.post("/v1/chat/completions", headers=as_key(key), json={
        "model": "rag", "messages": [{"role": "user", "content": question}]})


def test_a_read_key_reads_but_cannot_upload_or_delete(live):
    assert live.get("/v1/whoami", headers=as_key(READER)).json() == {
        "auth": True, "scope": "read", "collection": parse_key(f"{READER}:read", "").collection}
    assert live.get("/v1/documents", headers=as_key(READER)).status_code == 200
    assert live.post("/v1/retrieve", headers=as_key(READER),
                     json={"query": "vacation"}).status_code == 200
    assert "25 days" in ask(live, READER, "How many vacation days?").text
    r = upload(live, READER, "x.txt", "Read keys cannot write.")
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    assert "scope is 'read'" in r.json()["error"]["message"]
    assert "needs a 'write' key" in r.json()["error"]["message"]
    # refused before the body is read: an upload over the size limit is 403, not 413
    r = live.post("/v1/documents", headers=as_key(READER),
                  files={"file": ("big.txt", b"x" * 50_000, "text/plain")})
    assert r.status_code == 403
    doc = next(iter(documents(live).values()))
    r = live.delete(f"/v1/documents/{doc['id']}", headers=as_key(READER))
    assert r.status_code == 403 and doc["source"] in documents(live)


def test_write_keys_upload_side_by_side_and_delete_only_their_own(live, kb):
    assert upload(live, ALICE, "x.txt", "Alice says the volcano erupted in 1902.").status_code \
        == 200
    assert upload(live, BOB, "x.txt", "Bob says the bridge opened in 1932.").status_code == 200
    # two collections, two files named x.txt: neither clobbers the other
    assert (kb.path / "uploads" / "alice" / "x.txt").read_text().startswith("Alice")
    assert (kb.path / "uploads" / "bob" / "x.txt").read_text().startswith("Bob")
    docs = documents(live)
    alice, bob = docs["uploads/alice/x.txt"], docs["uploads/bob/x.txt"]
    assert (alice["collection"], bob["collection"]) == ("alice", "bob")
    assert alice["uploaded"] and not docs["docs/vacation.txt"]["uploaded"]
    assert docs["docs/vacation.txt"]["collection"] is None

    r = live.delete(f"/v1/documents/{alice['id']}", headers=as_key(BOB))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_owner"
    message = r.json()["error"]["message"]
    assert "uploads/alice/x.txt belongs to collection 'alice'" in message
    assert "admin key" in message and "collection 'bob'" in message
    r = live.delete(f"/v1/documents/{docs['docs/vacation.txt']['id']}", headers=as_key(BOB))
    assert r.status_code == 403 and "was not uploaded" in r.json()["error"]["message"]
    # Bob uploading x.txt again updates his own file, never Alice's
    assert upload(live, BOB, "x.txt", "Bob's bridge opened in 1933.").json()["updated"] == 1
    assert (kb.path / "uploads" / "alice" / "x.txt").read_text().startswith("Alice")

    assert live.delete(f"/v1/documents/{alice['id']}", headers=as_key(ALICE)).status_code == 200
    assert not (kb.path / "uploads" / "alice" / "x.txt").exists()
    r = live.delete(f"/v1/documents/{bob['id']}", headers=as_key(ADMIN))  # admin: any
    assert r.status_code == 200 and r.json()["collection"] == "bob"
    assert set(documents(live)) == {"docs/vacation.txt", "docs/tower.md"}


def test_an_admin_key_uploads_where_keys_did_before_and_deletes_anything(live, kb):
    assert live.get("/v1/whoami", headers=as_key(ADMIN)).json()["scope"] == "admin"
    assert upload(live, ADMIN, "policy.txt", "The office closes at 6 pm.").status_code == 200
    assert (kb.path / "uploads" / "policy.txt").exists()  # the default collection
    assert documents(live)["uploads/policy.txt"]["collection"] == "default"
    vacation = documents(live)["docs/vacation.txt"]
    assert live.delete(f"/v1/documents/{vacation['id']}", headers=as_key(ADMIN)
                       ).status_code == 200
    assert (kb.path.parent / "docs" / "vacation.txt").exists()  # not a file the server saved


def test_citations_and_hits_name_uploads_by_collection_and_never_a_server_path(live, kb):
    upload(live, ALICE, "volcano.md", "# Volcano\n\nMount Pelee erupted in 1902.")
    upload(live, BOB, "volcano.md", "# Volcano\n\nBob's notes say the volcano is dormant.")
    r = ask(live, READER, "When did Mount Pelee erupt?")
    assert r.status_code == 200
    cite = r.json()["citations"][0]
    assert cite["source"] == "uploads/alice/volcano.md" and cite["name"] == "volcano.md"
    r = live.post("/v1/retrieve", headers=as_key(READER), json={"query": "vacation days"})
    assert r.json()["data"][0]["source"] == "docs/vacation.txt"
    r = live.post("/v1/retrieve", headers=as_key(READER), json={
        "query": "volcano", "filters": {"source": "uploads/bob/*"}})
    assert [h["source"] for h in r.json()["data"]] == ["uploads/bob/volcano.md"]
    streamed = live.post("/v1/chat/completions", headers=as_key(READER), json={
        "model": "rag", "stream": True,
        "messages": [{"role": "user", "content": "When did Mount Pelee erupt?"}]}).text
    for text in (streamed, live.get("/v1/documents", headers=as_key(READER)).text,
                 ask(live, READER, "How many vacation days?").text):
        assert str(kb.path.parent) not in text and str(kb.path) not in text


def test_ownership_survives_a_restart(kb, tmp_path):
    settings = ServeSettings(kb=kb.path, api_keys=ENTRIES)
    with make_client(kb, api_keys=ENTRIES) as client:
        r = client.post("/v1/documents", headers=as_key(ALICE),
                        files={"file": ("plan.txt", b"Alice's plan: launch in May.", "text/plain")})
        assert r.status_code == 200, r.text
        doc_id = r.json()["data"][0]["id"]
    record = json.loads((kb.path / "sources.json").read_text())["sources"][
        str(kb.path / "uploads" / "alice" / "plan.txt")]
    assert record["collection"] == "alice" and record["display"] == "uploads/alice/plan.txt"
    reopened = KnowledgeBase.open(kb.path, embedder=FakeEmbedder(), generator=FakeGenerator())
    with LiveServer(create_app(settings, kb=reopened)) as server:
        r = httpx.delete(f"{server.url}/v1/documents/{doc_id}", headers=as_key(BOB))
        assert r.status_code == 403 and "collection 'alice'" in r.text
        r = httpx.delete(f"{server.url}/v1/documents/{doc_id}", headers=as_key(ALICE))
        assert r.status_code == 200


def test_a_failed_upload_puts_back_only_its_own_collections_file(kb, monkeypatch):
    with make_client(kb, api_keys=ENTRIES) as client:
        for key, text in ((ALICE, b"Alice's original."), (BOB, b"Bob's original.")):
            assert client.post("/v1/documents", headers=as_key(key), files={
                "file": ("keep.txt", text, "text/plain")}).status_code == 200

        def crash(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(type(kb), "ingest", crash)
        r = client.post("/v1/documents", headers=as_key(ALICE), files=[
            ("file", ("keep.txt", b"New text.", "text/plain")),
            ("file", ("fresh.txt", b"Fresh text.", "text/plain"))])
        assert r.status_code == 400 and "nothing was changed" in r.json()["error"]["message"]
    uploads = kb.path / "uploads"
    assert (uploads / "alice" / "keep.txt").read_bytes() == b"Alice's original."
    assert (uploads / "bob" / "keep.txt").read_bytes() == b"Bob's original."
    assert sorted(p.name for p in (uploads / "alice").iterdir()) == ["keep.txt"]


def test_without_keys_the_caller_is_a_local_admin(client, kb):
    assert client.get("/v1/whoami").json() == {"auth": False, "scope": "admin",
                                               "collection": "default"}
    r = client.post("/v1/documents", files={"file": ("a.txt", b"Local text.", "text/plain")})
    assert r.json()["data"][0]["source"] == "uploads/a.txt"
    assert (kb.path / "uploads" / "a.txt").exists()


@pytest.mark.parametrize(("entry", "expected"), [
    ("plain-key", ("admin", "default")),
    ("k1:read", ("read", None)),
    ("k2:write:team-a", ("write", "team-a")),
    ("k3:admin:ops", ("admin", "ops")),
    ("old:key:with:colons:admin", ("admin", "default")),
])
def test_key_entries(entry, expected):
    key = parse_key(entry, "--api-key 1")
    assert key.scope == expected[0]
    if expected[1] is None:  # derived: a short id from the key's hash, never the key
        assert key.collection.startswith("key-") and len(key.collection) == 12
        assert "k1" not in key.collection and key.collection == parse_key(entry, "").collection
    else:
        assert key.collection == expected[1]
    assert entry.split(":")[0] not in repr(key)


@pytest.mark.parametrize(("entry", "message"), [
    ("s3cret-value:wirte", "no scope after it"),
    ("s3cret-value:wirte:alice", "no scope after it"),
    ("s3cret-value:write:Alice Smith", "not a valid name"),
    ("s3cret-value:write:../etc", "not a valid name"),
    ("s3cret-value:write:", "not a valid name"),
    (":write", "is empty"),
    ("s3cret value:read", "white space"),
])
def test_bad_key_entries_are_refused_at_start_naming_the_entry_not_the_key(kb, entry, message):
    with pytest.raises(ConfigError, match=message) as info:
        ServeSettings(kb=kb.path, api_keys=("good-key", entry))
    assert "API key 2 of 2" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(ConfigError, match="another scope"):
        ServeSettings(kb=kb.path, api_keys=("same-key:read", "same-key:write"))


def test_a_bad_line_in_the_key_file_names_its_line(kb, tmp_path):
    from typer.testing import CliRunner

    from ragtune.cli import app

    keys = tmp_path / "keys"
    keys.write_text("# team keys\nfirst-key\nhidden-value:wirte\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--kb", str(kb.path), "--api-key-file",
                                      str(keys)])
    error = str(result.exception or result.output)
    assert result.exit_code != 0 and f"{keys} line 3" in error
    assert "hidden-value" not in error
    result = CliRunner().invoke(app, ["serve", "--kb", str(kb.path), "--api-key", "ok-key",
                                      "--api-key", "x:write:Bad"])
    assert "API key --api-key 2" in str(result.exception or result.output)
