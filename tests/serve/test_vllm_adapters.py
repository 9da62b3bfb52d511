"""Many LoRA adapters on one OpenAI-compatible server (vLLM's ``--enable-lora``): the
adapter travels as the request's ``model``. A stand-in server on a real socket records
the model each request names and, as vLLM does, refuses a name it does not serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient

from ragtune import KnowledgeBase
from ragtune.config import GeneratorSettings, Settings
from ragtune.errors import GenerationError
from ragtune.models.openai_generator import OpenAIGenerator, served_name
from ragtune.serve import ServeSettings, create_app
from ragtune.testing import FakeEmbedder
from tests.serve.conftest import LiveServer

BASE = "smollm2-base"
SERVED = {BASE, "legal", "medical"}  # vllm serve BASE --lora-modules legal=... medical=...


def stand_in(seen: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):  # type: ignore[no-untyped-def]
        body = await request.json()
        model = body["model"]
        seen.append(model)
        if model not in SERVED:
            return JSONResponse({"error": {"message": f"The model `{model}` does not exist.",
                                           "type": "NotFoundError", "code": 404}}, 404)
        pieces = ["The tower ", "was completed ", "in 1889 [1]."]
        if body.get("stream"):
            def events():  # type: ignore[no-untyped-def]
                for piece in pieces:
                    yield f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n"
                yield "data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return {"choices": [{"message": {"role": "assistant", "content": "".join(pieces)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 6}}

    return app


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    seen: list[str] = []
    with LiveServer(stand_in(seen)) as live:
        live.seen = seen
        yield live


def generator(url: str, adapter: str | None) -> OpenAIGenerator:
    return OpenAIGenerator.from_settings(GeneratorSettings(
        backend="openai", model=BASE, base_url=f"{url}/v1", adapter=adapter))


def test_the_adapter_is_the_model_each_request_names(server, tmp_path):
    question = [{"role": "user", "content": "When was the tower completed?"}]
    assert "1889" in generator(server.url, "legal").generate(question).text
    assert "".join(generator(server.url, "medical").stream(question)).endswith("[1].")
    generator(server.url, "auto").generate(question)
    generator(server.url, "none").generate(question)
    assert server.seen == ["legal", "medical", BASE, BASE]
    with pytest.raises(GenerationError, match="HTTP 404.*`tax` does not exist"):
        generator(server.url, "tax").generate(question)


def test_an_export_folder_is_asked_for_by_its_recorded_name(tmp_path):
    export = tmp_path / "exports" / "legal-v2"
    export.mkdir(parents=True)
    (export / "ragtune-export.json").write_text(json.dumps({"name": "legal"}))
    run = tmp_path / "runs" / "medical"
    run.mkdir(parents=True)
    assert served_name(export) == "legal"
    assert served_name(run) == "medical"  # a run or PEFT folder: its folder's name
    assert served_name("tax") == "tax"  # not a folder: the server's name for it
    (export / "ragtune-export.json").write_text("{broken")
    with pytest.raises(Exception, match="ragtune-export.json is not valid JSON"):
        served_name(export)


def ask(client: TestClient, pipeline: str, question: str) -> dict:
    response = client.post("/v1/chat/completions", json={
        "model": pipeline, "messages": [{"role": "user", "content": question}]})
    assert response.status_code == 200, response.text
    return response.json()["ragtune"]


def test_the_server_sends_the_adapter_the_pipeline_chose(server, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.md").write_text("The Eiffel Tower was completed in 1889.")
    settings = Settings(generator=GeneratorSettings(backend="openai", model=BASE,
                                                    base_url=f"{server.url}/v1"))
    kb = KnowledgeBase.create(tmp_path / "kb", settings, embedder=FakeEmbedder())
    kb.ingest([docs])
    app = create_app(ServeSettings(kb=kb.path, adapter=Path("legal")), kb=kb)
    with TestClient(app) as client:
        server.seen.clear()
        ask(client, "rag", "When was the Eiffel Tower completed?")
        assert server.seen == [BASE]  # retrieval over the base model
        for pipeline in ("closed", "serial"):
            server.seen.clear()
            ask(client, pipeline, "When was the Eiffel Tower completed?")
            assert set(server.seen) == {"legal"}, pipeline
        # layered: the router picks per question (the rules: the tuned model over the
        # sources where there is evidence, alone where there is none); every generation
        # of a pick that uses the fine-tuned model asks for the adapter
        picks = {}
        for question in ("When was the Eiffel Tower completed?", "zyxq wvut plok?"):
            server.seen.clear()
            extras = ask(client, "layered", question)
            picks[extras["route"]["strategy"]] = set(server.seen)
        assert picks == {"serial": {"legal"}, "closed": {"legal"}}


def test_serve_generator_openai_passes_the_adapter(server, tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from ragtune.cli import app
    from ragtune.config import EmbedderSettings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.md").write_text("The Eiffel Tower was completed in 1889.")
    with KnowledgeBase.create(tmp_path / "kb", Settings(embedder=EmbedderSettings(
            backend="fake", model="fake-hash"))) as kb:  # reopened by name in the server
        kb.ingest([docs])

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    for name in ("BACKEND", "MODEL", "BASE_URL"):  # restored after the test
        monkeypatch.setenv(f"RAGTUNE_GENERATOR_{name}", "")
    result = CliRunner().invoke(app, ["serve", "--kb", str(kb.path), "--generator", "openai",
                                      "--base-url", f"{server.url}/v1", "--model", BASE,
                                      "--adapter", "medical"])
    assert result.exit_code == 0, result.output
    with TestClient(started["app"]) as client:
        server.seen.clear()
        ask(client, "closed", "When was the Eiffel Tower completed?")
        ask(client, "rag", "When was the Eiffel Tower completed?")
    assert server.seen == ["medical", BASE]
    server.seen.clear()
    result = CliRunner().invoke(app, ["ask", "When was the Eiffel Tower completed?", "--kb",
                                      str(kb.path), "--generator", "openai", "--base-url",
                                      f"{server.url}/v1", "--model", BASE, "--adapter",
                                      "legal"])
    assert result.exit_code == 0, result.output
    assert "1889" in result.output and server.seen == ["legal"]
