"""Hostile files ingested into a knowledge base that already holds good documents, by the
``ragtune ingest`` command in a process of its own: it ends in time, within a memory bound,
reports every bad path once with its reason, and loses nothing already stored.

``bench/ingest_fuzz.py`` runs the same files at full size (20 MB lines, 200 MB bombs)."""

import os
import sys
from pathlib import Path

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings
from ragtune.testing import register_fakes
from ragtune.testing.hostile import EITHER, make_hostile, run_measured

# measured 492 to 744 MB: 12,800 chunks (a 9 MB line streams into 10,000 of them) whose
# tokens the lexical index holds while it is written at the end; the libraries take 242 MB
PEAK_MB = 1000
TIMEOUT_S = 60


def test_hostile_files_are_reported_once_in_bounded_memory_and_lose_nothing(tmp_path):
    settings = Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"))
    good = tmp_path / "good"
    good.mkdir()
    for i, place in enumerate(["lighthouse", "granary", "boathouse"]):
        (good / f"{place}.txt").write_text(f"The {place} on the quay was built in 18{i}0 "
                                           f"and holds the {place} records of the town.")
    kb = KnowledgeBase.create(tmp_path / "kb", settings)
    kb.ingest([good])
    stored = {(c.id, c.text) for c in kb.store.scan()}
    expected = make_hostile(tmp_path / "hostile", tmp_path / "outside", huge_mb=9,
                            bomb_mb=100)

    env = {**os.environ, "PYTHONPATH": register_fakes(tmp_path / "fakes"),
           "RAGTUNE_EMBEDDER_BACKEND": "fake", "RAGTUNE_EMBEDDER_MODEL": "fake-hash"}
    ragtune = [sys.executable, "-m", "ragtune"]
    run = run_measured([*ragtune, "ingest", "--kb", str(kb.path), str(tmp_path / "hostile"),
                        "--json"], timeout=TIMEOUT_S, env=env)
    assert run.returncode == 2, run.stderr[-2000:]  # some files skipped, the rest ingested
    assert run.peak_rss_mb < PEAK_MB

    report = run.json()
    # a path is the file, or the file and its line (bad.jsonl:2)
    failed = [(Path(f["path"]).name.split(":")[0], f["reason"]) for f in report["failed"]]
    names = [name for name, _ in failed]
    assert len(names) == len(set(names)), "a path was reported twice"
    reasons = dict(failed)
    for name, words in expected.items():
        if words is None:
            assert name not in reasons, (name, reasons.get(name))
        elif words != EITHER:
            assert words in reasons.get(name, ""), (name, reasons.get(name))
    assert set(reasons) <= set(expected)
    assert run.stderr.count("pipe.txt") <= 1  # not printed twice either

    kb = KnowledgeBase.open(kb.path, settings)
    sources = {Path(r.source).name for r in kb.sources()}
    must = {n for n, w in expected.items() if w is None}
    assert must | {"lighthouse.txt", "granary.txt", "boathouse.txt"} <= sources
    assert not sources & {n for n, w in expected.items() if w not in (None, EITHER)}
    assert stored <= {(c.id, c.text) for c in kb.store.scan()}  # nothing lost
    assert kb.search("granary records of the town", k=1)[0].chunk.source.endswith("granary.txt")
    assert kb.verify().ok
