"""kill -9 an ingest at random points; the knowledge base must stay consistent and resume."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings

SETTINGS = Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    rng = random.Random(7)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    for i in range(300):
        sentences = [" ".join(rng.choices(words, k=rng.randint(8, 30))) + "." for _ in range(
            rng.randint(3, 25))]
        (folder / f"file{i:03d}.txt").write_text(f"File {i}. " + " ".join(sentences))
    return folder


def ingest_command(corpus, kb):
    return [sys.executable, "-m", "ragtune", "-v", "ingest", str(corpus), "--kb", str(kb),
            "--quiet"]


def env():
    return {**os.environ, "RAGTUNE_EMBEDDER_BACKEND": "fake", "RAGTUNE_EMBEDDER_MODEL": "fake-hash",
            "RAGTUNE_INGEST_BATCH_CHUNKS": "16"}


def test_kill_at_random_points_then_resume(tmp_path, corpus):
    reference = KnowledgeBase.create(tmp_path / "reference", SETTINGS)
    reference.ingest([corpus])
    expected = {c.id for c in reference.store.scan()}
    commits = len(expected) // 16  # batches of 16 chunks: about this many commits per run

    kb = tmp_path / "kb"
    rng = random.Random(1234)
    partial = []
    notes: list[str] = []
    # kill after a random number of commits (read from the process's log, so the kill lands
    # inside the work), plus a random extra delay that puts it anywhere within a batch
    for _ in range(4):
        target = rng.randint(1, max(1, commits // 4))
        proc = subprocess.Popen(ingest_command(corpus, kb), env=env(), text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seen = 0
        for line in proc.stderr:
            seen += "committed" in line
            if seen >= target:
                break
        time.sleep(rng.uniform(0, 0.05))  # where inside the next batch the kill falls
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        # after the crash: readers see exactly the committed state
        base = KnowledgeBase.open(kb, SETTINGS)
        recorded = {i for r in base.sources() for i in r.chunk_ids}
        visible = [c.id for c in base.store.scan()]
        assert set(visible) == recorded and len(visible) == len(set(visible))
        assert base.search("alpha beta", k=3)
        report = base.verify()  # right after the kill, before any write rolls it back
        assert report.ok, report.problems
        notes.extend(report.notes)
        partial.append(len(base.sources()))
    # the kills landed part-way through, not after the work was done
    print("sources after each kill:", partial, "notes:", notes)
    assert all(0 < n < 300 for n in partial), partial

    resumed = KnowledgeBase.open(kb, SETTINGS).ingest([corpus])
    assert resumed.exit_code == 0
    final = KnowledgeBase.open(kb, SETTINGS)
    report = final.verify()
    assert report.ok, report.problems
    stored = [c.id for c in final.store.scan()]
    assert len(stored) == len(set(stored)) == len(expected)  # no duplicate, none lost
    assert set(stored) == expected
    assert len(final.sources()) == 300
