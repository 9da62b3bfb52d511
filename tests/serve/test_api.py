"""The API through ``create_app`` with the fake models: OpenAI schema, documents, limits."""

import json
from pathlib import Path

import pytest

from tests.serve.conftest import KEY, make_client


def ask(client, question, **extra):
    body = {"model": "rag", "messages": [{"role": "user", "content": question}], **extra}
    return client.post("/v1/chat/completions", json=body)


def events(response):
    out = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_chat_completion_carries_citations(client):
    r = ask(client, "How many vacation days does an employee get?")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and data["model"] == "rag"
    message = data["choices"][0]["message"]
    assert message["role"] == "assistant" and "25 days" in message["content"]
    cite = data["citations"][0]
    assert cite["name"] == "vacation.txt" and "25 days" in cite["text"]
    assert {"source", "page", "supported", "n"} <= set(cite)
    assert data["usage"]["total_tokens"] == (data["usage"]["prompt_tokens"]
                                             + data["usage"]["completion_tokens"])
    assert data["ragtune"]["pipeline"] == "rag" and "retrieve_ms" in data["ragtune"]["timings"]


def test_streaming_sends_openai_chunks_then_citations(client):
    r = ask(client, "How many vacation days does an employee get?", stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = events(r)
    assert chunks[-1] == "[DONE]"
    body = chunks[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in body)
    assert body[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in body)
    assert "25 days" in text
    pieces = [c for c in body if c["choices"][0]["delta"].get("content")]
    assert len(pieces) > 3  # token by token, not one block
    last = body[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["citations"][0]["name"] == "vacation.txt"
    # the streamed answer is the one a non-streamed request gets
    assert text == ask(client, "How many vacation days does an employee get?"
                       ).json()["choices"][0]["message"]["content"]


def test_layered_streams_its_final_answer(client):
    r = client.post("/v1/chat/completions", json={
        "model": "layered", "stream": True,
        "messages": [{"role": "user", "content": "When was the Eiffel Tower completed?"}]})
    chunks = events(r)
    assert chunks[-1] == "[DONE]" and chunks[-2]["ragtune"]["pipeline"] == "layered"


def test_models_list_the_pipelines(client):
    data = client.get("/v1/models").json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["rag", "closed", "layered"]


def test_unknown_model_and_bad_requests_get_openai_errors(client):
    r = client.post("/v1/chat/completions", json={
        "model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["param"] == "model" and "rag, closed, layered" in err["message"]
    r = client.post("/v1/chat/completions", json={"model": "rag", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = ask(client, "hi", max_tokens=100_000)
    assert r.status_code == 400 and "limit of 1024" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    r = client.post("/v1/chat/completions", json={
        "model": "rag", "messages": [{"role": "system", "content": "be brief"}]})
    assert r.status_code == 400 and "no user message" in r.json()["error"]["message"]


def test_retrieve_with_filters(client):
    r = client.post("/v1/retrieve", json={"query": "Eiffel Tower", "k": 2})
    assert r.status_code == 200
    hits = r.json()["data"]
    assert hits[0]["name"] == "tower.md" and "1889" in hits[0]["text"]
    r = client.post("/v1/retrieve", json={"query": "Eiffel Tower", "k": 2,
                                          "filters": {"source": "*vacation*"}})
    assert [h["name"] for h in r.json()["data"]] == ["vacation.txt"]
    r = client.post("/v1/retrieve", json={"query": "x", "k": 500})
    assert r.status_code == 400 and r.json()["error"]["param"] == "k"
    r = client.post("/v1/retrieve", json={"query": "x", "filters": {"pages": "seven"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "filters"


def test_a_source_filter_matches_shown_names_never_server_paths(client, kb):
    # a glob over the server's own folders finds nothing, so it cannot tell which of its
    # files exist; the name a citation shows matches
    stored, name = next((s, n) for s, n in kb.display_names().items() if "vacation" in s)
    assert stored.startswith("/") and not name.startswith("/")

    def found(glob: str) -> list[str]:
        r = client.post("/v1/retrieve", json={"query": "vacation days", "k": 3,
                                              "filters": {"source": glob}})
        assert r.status_code == 200
        return [h["source"] for h in r.json()["data"]]

    assert found(stored) == [] and found(str(Path(stored).parent) + "/*") == []
    assert found("/*") == [] and found(stored[:2] + "*") == []
    assert found(name) and set(found(name)) == {name}
    assert set(found("vacation*")) == {name}


def test_upload_list_ask_and_delete(client, kb):
    r = client.post("/v1/documents", files={"file": (
        "policy.txt", b"The office closes at 6 pm on Fridays.", "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 1
    doc = r.json()["data"][0]
    assert doc["name"] == "policy.txt" and doc["uploaded"] and doc["chunks"] == 1
    names = [d["name"] for d in client.get("/v1/documents").json()["data"]]
    assert sorted(names) == ["policy.txt", "tower.md", "vacation.txt"]
    answer = ask(client, "When does the office close on Fridays?").json()
    assert answer["citations"][0]["name"] == "policy.txt"
    # uploading the same name again updates it
    r = client.post("/v1/documents", files={"file": (
        "policy.txt", b"The office closes at 5 pm on Fridays.", "text/plain")})
    assert r.json()["updated"] == 1
    r = client.delete(f"/v1/documents/{doc['id']}")
    assert r.status_code == 200 and r.json()["name"] == "policy.txt"
    assert not (kb.path / "uploads" / "policy.txt").exists()
    assert "policy.txt" not in [d["name"] for d in client.get("/v1/documents").json()["data"]]
    r = client.delete(f"/v1/documents/{doc['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"


def test_upload_names_are_sanitised(client, kb, tmp_path):
    r = client.post("/v1/documents", files={"file": (
        "../../escape.txt", b"Escaped text.", "text/plain")})
    assert r.status_code == 200
    assert r.json()["data"][0]["name"] == "escape.txt"
    assert (kb.path / "uploads" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists() and not (kb.path.parent.parent /
                                                           "escape.txt").exists()
    windows = ("..\\..\\win.md", b"# Win\n\nWindows paths too.", "text/plain")
    r = client.post("/v1/documents", files={"file": windows})
    assert r.json()["data"][0]["name"] == "win.md"
    r = client.post("/v1/documents", files={"file": (".htaccess", b"x", "text/plain")})
    assert r.status_code == 400
    r = client.post("/v1/documents", files={"file": ("run.exe", b"MZ", "application/x")})
    assert r.status_code == 400 and ".pdf" in r.json()["error"]["message"]


def test_a_broken_upload_loses_nothing(client, kb):
    good = _pdf()
    ok = client.post("/v1/documents", files={"file": ("report.pdf", good, "application/pdf")})
    assert ok.status_code == 200, ok.text
    before = client.get("/v1/documents").json()["data"]
    r = client.post("/v1/documents", files={"file": (
        "report.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf")})
    assert r.status_code == 400 and "report.pdf" in r.json()["error"]["message"]
    assert client.get("/v1/documents").json()["data"] == before
    # the good version is still on disk, and a new bad file leaves nothing behind
    assert (kb.path / "uploads" / "report.pdf").read_bytes() == good
    r = client.post("/v1/documents", files={"file": ("new.pdf", b"garbage", "application/pdf")})
    assert r.status_code == 400 and not (kb.path / "uploads" / "new.pdf").exists()


def test_a_mixed_upload_keeps_the_good_file_and_says_so(client, kb):
    r = client.post("/v1/documents", files=[
        ("file", ("good.txt", b"The canteen opens at 8 am.", "text/plain")),
        ("file", ("empty.txt", b"", "text/plain"))])
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "empty.txt" in message and "other 1 file(s) in the upload were ingested" in message
    names = [d["name"] for d in client.get("/v1/documents").json()["data"]]
    assert "good.txt" in names and "empty.txt" not in names
    # the ingested file stays on disk, the failed one is gone
    assert (kb.path / "uploads" / "good.txt").exists()
    assert not (kb.path / "uploads" / "empty.txt").exists()


def test_an_ingest_crash_puts_the_files_back(client, kb, monkeypatch):
    ok = client.post("/v1/documents", files={"file": ("keep.txt", b"Original text.", "text/plain")})
    assert ok.status_code == 200, ok.text

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(kb), "ingest", crash)
    r = client.post("/v1/documents", files=[
        ("file", ("keep.txt", b"New text.", "text/plain")),
        ("file", ("fresh.txt", b"Fresh text.", "text/plain"))])
    assert r.status_code == 400 and "disk full" in r.json()["error"]["message"]
    assert "nothing was changed" in r.json()["error"]["message"]
    assert (kb.path / "uploads" / "keep.txt").read_bytes() == b"Original text."
    assert not (kb.path / "uploads" / "fresh.txt").exists()


def _pdf():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Quarterly revenue rose by 12 percent.")
    return bytes(pdf.output())


def test_api_keys(keyed):
    assert keyed.get("/health").status_code == 200
    assert keyed.get("/health").json()["auth"] is True
    for method, path in (("get", "/v1/models"), ("get", "/v1/documents"),
                         ("get", "/openapi.json"), ("post", "/v1/retrieve"),
                         ("post", "/v1/chat/completions"), ("delete", "/v1/documents/x")):
        r = getattr(keyed, method)(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["type"] == "authentication_error"
        assert r.headers["www-authenticate"] == "Bearer"
    r = keyed.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = keyed.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    assert keyed.get("/").status_code == 200  # the page is static; its data needs the key


def test_size_limits(keyed):
    auth = {"Authorization": f"Bearer {KEY}"}
    big = b"x" * 20_000  # over the 0.01 MB upload limit of this server
    r = keyed.post("/v1/documents", files={"file": ("big.txt", big, "text/plain")},
                   headers=auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = keyed.post("/v1/retrieve", content=b'{"query": "' + b"a" * 300_000 + b'"}',
                   headers={**auth, "content-type": "application/json"})
    assert r.status_code == 413


def test_openapi_document(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/chat/completions", "/v1/models", "/v1/retrieve", "/v1/documents",
            "/v1/documents/{doc_id}", "/health"} <= set(spec["paths"])


def test_cors_is_off_unless_configured(kb, client):
    r = client.options("/v1/models", headers={"Origin": "https://app.example",
                                              "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    with make_client(kb, cors_origins=("https://app.example",)) as c:
        r = c.options("/v1/models", headers={"Origin": "https://app.example",
                                             "Access-Control-Request-Method": "GET"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"


def test_the_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "<title>ragtune</title>" in r.text
    js = client.get("/static/app.js").text
    code = "\n".join(line for line in js.splitlines() if not line.lstrip().startswith("//"))
    assert "innerHTML" not in code  # document text goes through textContent only


def test_the_key_is_checked_before_the_body_and_an_empty_one_never_passes(keyed):
    broken = {"content-type": "application/json"}
    r = keyed.post("/v1/chat/completions", content=b'{"model": "rag", "messa', headers=broken)
    assert r.status_code == 401  # not 400: a caller without a key learns nothing
    for header in ("Bearer ", "Bearer", "Bearer  ", "Basic " + KEY, KEY):
        r = keyed.delete("/v1/documents/x", headers={"Authorization": header})
        assert r.status_code == 401, header
    r = keyed.post("/v1/chat/completions", content=b'{"model": "rag", "messa',
                   headers={**broken, "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400  # with the key, the body is read and found malformed


def test_empty_or_blank_keys_are_refused_at_start(kb, tmp_path):
    from typer.testing import CliRunner

    from ragtune.cli import app
    from ragtune.cli.serve import read_key_file
    from ragtune.errors import ConfigError
    from ragtune.serve import ServeSettings

    for keys in (("",), ("  ",), ("good", ""), ("two words",)):
        with pytest.raises(ConfigError, match="API key"):
            ServeSettings(kb=kb.path, api_keys=keys)
    result = CliRunner().invoke(app, ["serve", "--kb", str(kb.path), "--api-key", ""])
    assert result.exit_code != 0 and "empty" in str(result.exception or result.output)
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nfirst-key\n\n  second-key  \n", encoding="utf-8")
    assert read_key_file(keys) == [("first-key", f"{keys} line 2"),
                                   ("second-key", f"{keys} line 4")]
    keys.write_text("# none yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no key"):
        read_key_file(keys)
    with pytest.raises(ConfigError, match="cannot read"):
        read_key_file(tmp_path / "missing")


def test_every_response_carries_the_security_headers(client, keyed):
    for r in (client.get("/"), client.get("/static/app.js"), client.get("/health"),
              client.get("/v1/models"), keyed.get("/v1/models"), client.get("/nowhere")):
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
    page = client.get("/").text
    assert "<script>" not in page and "style=" not in page  # nothing inline for the CSP


def test_a_failed_write_puts_back_the_files_the_upload_had_replaced(client, kb, monkeypatch):
    import errno
    import os

    from ragtune.serve import library

    assert client.post("/v1/documents", files={"file": (
        "x.txt", b"The old text of x.", "text/plain")}).status_code == 200
    long = "文" * 119 + ".txt"  # 119 characters, 357 bytes: over most file systems' 255
    assert len(library.safe_name(long).encode()) <= library.MAX_NAME_BYTES
    real = os.replace

    def fail_second(src, dst):  # type: ignore[no-untyped-def]
        if not str(dst).endswith("x.txt"):
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        real(src, dst)

    monkeypatch.setattr(library.os, "replace", fail_second)
    r = client.post("/v1/documents", files=[
        ("file", ("x.txt", b"New bytes for x.", "text/plain")),
        ("file", (long, b"Another file.", "text/plain"))])
    assert r.status_code == 400 and "nothing was changed" in r.json()["error"]["message"]
    assert (kb.path / "uploads" / "x.txt").read_bytes() == b"The old text of x."
    assert not [p for p in (kb.path / "uploads").iterdir() if p.name != "x.txt"]
    monkeypatch.setattr(library.os, "replace", real)
    r = client.post("/v1/documents", files=[("file", (long, b"Another file.", "text/plain"))])
    assert r.status_code == 200, r.text  # the name is cut to fit, on a character boundary


def test_a_long_question_is_cut_with_a_note(kb):
    with make_client(kb, max_question_chars=200) as c:
        r = ask(c, "How many vacation days does an employee get? " + "Please answer. " * 500)
        assert r.status_code == 200
        notes = r.json()["ragtune"]["notes"]
        assert len(notes) == 1 and "was cut" in notes[0] and "to 19" in notes[0]
        assert ask(c, "How many vacation days?").json()["ragtune"]["notes"] == []


def test_an_answer_past_the_time_limit_ends_with_504(kb):
    with make_client(kb, request_timeout_s=0.0) as c:
        r = ask(c, "How many vacation days does an employee get?")
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        r = ask(c, "How many vacation days does an employee get?", stream=True)
        assert "took over 0 s" in r.text and r.text.rstrip().endswith("[DONE]")


def test_requests_over_the_queue_bound_get_503(kb, monkeypatch):
    import threading

    from ragtune.testing import FakeGenerator

    entered, release = threading.Event(), threading.Event()
    real = FakeGenerator.stream

    def blocking(self, messages, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(10)
        yield from real(self, messages, **kwargs)

    monkeypatch.setattr(FakeGenerator, "stream", blocking)
    with make_client(kb, max_pending=1) as c:
        first: dict = {}
        worker = threading.Thread(target=lambda: first.setdefault(
            "r", ask(c, "How many vacation days?")))
        worker.start()
        assert entered.wait(10)
        busy = ask(c, "How many vacation days?")
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
        release.set()
        worker.join(10)
        assert first["r"].status_code == 200
        assert ask(c, "How many vacation days?").status_code == 200  # the slot is free again


def test_a_client_that_leaves_stops_the_generation():
    import threading

    from ragtune.serve import chat

    left, outcome = threading.Event(), {}

    def run(watch):  # type: ignore[no-untyped-def]
        watch.emit("first ")
        left.wait(10)
        try:
            watch.emit("second")
        except chat.Stopped as exc:
            outcome["stopped"] = str(exc)
            raise
        outcome["stopped"] = None

    finished = threading.Event()
    semaphore = threading.BoundedSemaphore(1)
    semaphore.acquire()
    slot = chat.Slot(semaphore)
    slot.release = finished.set  # type: ignore[method-assign]
    events = chat.stream(run, "rag", live=True, timeout_s=60, slot=slot)
    next(events)  # the role chunk
    assert "first" in next(events)
    events.close()  # what the server does when the client disconnects
    left.set()
    assert finished.wait(10)
    assert outcome["stopped"] == "the client disconnected"


def test_a_slot_is_freed_once_even_when_the_stream_never_began():
    import contextlib
    import threading

    import anyio
    from starlette.requests import ClientDisconnect

    from ragtune.serve import chat

    semaphore = threading.BoundedSemaphore(1)
    semaphore.acquire()
    slot = chat.Slot(semaphore)
    slot.release()
    slot.release()  # a second release changes nothing (a BoundedSemaphore would raise)
    assert semaphore.acquire(blocking=False) and not semaphore.acquire(blocking=False)

    slot = chat.Slot(semaphore)  # the semaphore is held again, by this request
    started = []

    def events():  # type: ignore[no-untyped-def]
        started.append(True)
        yield "data: x\n\n"

    async def gone():  # type: ignore[no-untyped-def]
        return {"type": "http.disconnect"}

    async def send(message):  # type: ignore[no-untyped-def]
        raise OSError("the client is gone")

    response = chat.SlotStream(slot, events(), media_type="text/event-stream")
    with contextlib.suppress(OSError, ClientDisconnect):  # what the server sees of it
        anyio.run(response, {"type": "http", "asgi": {"spec_version": "2.4"}}, gone, send)
    assert semaphore.acquire(blocking=False)  # freed, though no answer thread ever ran


def test_keys_must_be_printable_ascii_and_limits_positive(kb):
    from ragtune.errors import ConfigError
    from ragtune.serve import ServeSettings

    with pytest.raises(ConfigError, match="printable ASCII"):
        ServeSettings(kb=kb.path, api_keys=("clé-secrète",))
    with pytest.raises(ConfigError, match="max_pending must be at least 1"):
        ServeSettings(kb=kb.path, max_pending=0)
