"""``ragtune kb reembed`` through the CLI and the real registry, with the fake backend."""

import json

from typer.testing import CliRunner

from ragtune.cli import app

runner = CliRunner()


def test_kb_reembed_switches_the_embedder_and_keeps_every_chunk(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGTUNE_EMBEDDER_BACKEND", "fake")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The warranty lasts two years from the date of purchase.")
    (docs / "b.md").write_text("# Returns\n\nItems can be returned within 30 days.")
    kb = str(tmp_path / "kb")
    assert runner.invoke(app, ["ingest", str(docs), "--kb", kb]).exit_code == 0
    before = json.loads(runner.invoke(app, ["kb", "stats", "--kb", kb, "--json"]).output)

    result = runner.invoke(app, ["kb", "reembed", "--kb", kb, "--embedder", "fake-other"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"re-embedded {before['chunks']} chunks with fake-other"
    after = json.loads(runner.invoke(app, ["kb", "stats", "--kb", kb, "--json"]).output)
    assert after["embedder"]["model"] == "fake-other" and after["chunks"] == before["chunks"]
    assert runner.invoke(app, ["kb", "verify", "--kb", kb]).exit_code == 0
    hits = json.loads(runner.invoke(app, ["search", "how long is the warranty", "--kb", kb,
                                          "--json"]).output)["hits"]
    assert hits[0]["source"].endswith("a.txt")
    # the old embedder is refused now, with the command that switches back
    result = runner.invoke(app, ["ingest", str(docs), "--kb", kb, "--embedder", "fake-hash"])
    assert result.exit_code != 0 and "ragtune kb reembed" in str(result.exception)
