"""The README's Python example and the CLI, as a user runs them."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Quickstart: Python\n\n```python\n(.*?)```", readme, re.S).group(1)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "added" in proc.stdout and "docs/ingest.md" in proc.stdout


ENV = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
RUN = [sys.executable, "-m", "ragtune"]


@pytest.fixture(scope="module")
def docs_kb(tmp_path_factory):
    kb = tmp_path_factory.mktemp("cli") / "kb"
    proc = subprocess.run([*RUN, "ingest", str(ROOT / "docs"), "--kb", str(kb), "--json"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["added"] == len(list((ROOT / "docs").glob("*.md")))
    return kb


def test_cli_ingest_and_ask_json(docs_kb):
    proc = subprocess.run([*RUN, "ask", "Which file formats can ragtune ingest?", "--kb",
                           str(docs_kb), "--json"], capture_output=True, text=True, env=ENV,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["answer"] and data["citations"]
    assert data["citations"][0]["source"].endswith("docs/ingest.md")
    assert data["timings"]["total_ms"] > 0 and data["prompt_tokens"] > 0


def test_cli_serve_answers_the_openai_client(docs_kb):
    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*RUN, "serve", "--kb", str(docs_kb), "--port", str(port),
                               "--api-key", "k-123"], stderr=subprocess.PIPE, text=True,
                              env=ENV)
    try:
        for line in server.stderr:  # uvicorn logs this once the models are loaded
            if "Application startup complete" in line:
                break
        else:
            raise AssertionError(f"the server exited with {server.wait()}")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k-123",
                               max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model="rag", max_tokens=48,
            messages=[{"role": "user", "content": "Which file formats can ragtune ingest?"}])
        assert reply.choices[0].message.content
        assert reply.model_extra["citations"][0]["name"] == "ingest.md"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong",
                          max_retries=0).models.list()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_docs_question_far_from_its_chunk_is_answered_and_an_off_topic_one_is_not(docs_kb):
    """The relevance gate with the real embedder: the sentence that says how to start the
    server lets the question through although its chunk is far from it; a question the
    docs do not cover still abstains without generating."""
    from ragtune import KnowledgeBase
    from ragtune.rag.relevance import best_similarity, min_similarity, relevance

    with KnowledgeBase.open(docs_kb) as kb:
        threshold = min_similarity(None, kb.manifest.embedder_model)
        question = "How do I start the server?"
        hits = kb.search(question)
        measured = relevance(question, hits, kb.answer_embedder)
        assert threshold is not None and measured.similarity is not None
        assert best_similarity(hits) < threshold <= measured.similarity
        answer = kb.ask(question)
        assert not answer.abstained and "ragtune serve" in answer.text
        assert answer.citations[0].chunk.source.endswith("serve.md")
        off_topic = kb.ask("Who won the 2018 World Cup?")
        assert off_topic.abstained and off_topic.steps[-1] == "relevance"
