"""Incremental sync, kb maintenance and bad input, with the fake embedder."""

import json
import os

import numpy as np
import pytest

from ragtune import KnowledgeBase, Settings
from ragtune.config import IngestSettings
from ragtune.errors import ConfigError, KnowledgeBaseError
from ragtune.index.lock import write_lock
from ragtune.index.sources import load_sources, save_sources
from ragtune.testing import FakeEmbedder
from ragtune.types import Chunk


def fake_settings(**ingest) -> Settings:
    from ragtune.config import EmbedderSettings

    return Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"),
                    ingest=IngestSettings(**ingest))


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(6):
        # two chunks per file (the fake embedder counts words): three 65-word sentences
        # (195 of the 200 tokens a chunk holds, each longer than the 40-token overlap),
        # then a paragraph of 10-word sentences
        first = " ".join(f"Document {i} topic {i} sentence {j} " + "word " * 58 + "end."
                         for j in range(3))
        second = " ".join(f"The second paragraph of document {i} has ten words." for _ in range(3))
        (folder / f"doc{i}.txt").write_text(first + "\n\n" + second)
    return folder


@pytest.fixture
def kb(tmp_path, docs):
    base = KnowledgeBase.create(tmp_path / "kb", fake_settings())
    base.ingest([docs])
    return base


def reopen(kb):
    return KnowledgeBase.open(kb.path, fake_settings())


def test_unchanged_reingest_loads_no_embedder(kb, docs):
    fresh = reopen(kb)
    report = fresh.ingest([docs])
    assert len(report.unchanged) == 6 and report.chunks_embedded == 0
    assert fresh._embedder is None  # no model was built for a no-op sync
    assert fresh.verify().ok


def test_edit_replaces_only_changed_chunks(kb, docs):
    path = docs / "doc0.txt"
    paragraphs = path.read_text().split("\n\n")
    new = "This brand new closing paragraph has exactly ten words."
    path.write_text(paragraphs[0] + "\n\n" + new)
    report = reopen(kb).ingest([docs])
    assert [s.rsplit("/", 1)[-1] for s in report.updated] == ["doc0.txt"]
    assert report.chunks_embedded == 1 and report.chunks_reused == 1
    texts = [c.text for c in reopen(kb).store.scan() if c.source.endswith("doc0.txt")]
    assert sorted(texts) == sorted([paragraphs[0], new])


def test_prune_and_keep_missing(kb, docs):
    (docs / "doc1.txt").unlink()
    kept = reopen(kb).ingest([docs], prune=False)
    assert kept.removed == [] and len(reopen(kb).sources()) == 6
    pruned = reopen(kb).ingest([docs])
    assert len(pruned.removed) == 1 and len(reopen(kb).sources()) == 5
    assert reopen(kb).verify().ok


def test_remove_by_path_name_and_glob(kb, docs):
    base = reopen(kb)
    assert len(base.remove([str(docs / "doc0.txt")])) == 1
    assert len(base.remove(["*doc[12].txt"])) == 2
    assert len(base.sources()) == 3 and base.verify().ok
    with pytest.raises(ConfigError, match="no source matches 'nothing'.*stored sources"):
        base.remove(["nothing"])
    assert len(base.remove([str(docs)])) == 3  # a folder removes what is inside it


def test_history_lists_committed_versions(kb, docs):
    from ragtune.index.maintenance import history

    (docs / "doc2.txt").write_text("changed")
    reopen(kb).ingest([docs])
    entries = history(reopen(kb).index)
    assert [e["operation"] for e in entries] == ["ingest", "ingest"]
    assert entries[1]["updated"] == 1 and entries[-1]["version"] == reopen(kb).version
    answer_version = reopen(kb).ask("topic", generator=__import__(
        "ragtune.testing", fromlist=["FakeGenerator"]).FakeGenerator()).kb_version
    assert answer_version == entries[-1]["version"]


def test_verify_finds_and_repairs_missing_orphan_duplicate_and_lexical(kb):
    base = reopen(kb)
    store = base.index.writable_store()
    record = base.sources()[0]
    rows = store.rows(store.columns)
    first = rows.slice(0, 1)
    store.delete([record.chunk_ids[0]])  # missing
    store.add([Chunk(id="orphan", source="/nowhere.txt", text="x", start=0, end=1)],
              np.ones((1, 64), dtype=np.float32) / 8.0)  # orphan
    store.add_rows(first)  # duplicate (or re-adds the deleted one)
    (base.path / "lexical" / "ids.json").write_text("[]")  # lexical out of sync
    # uncommitted, the damage is an interrupted write: readers and verify see the version
    # before it, and only the lexical index is out of step
    pending = reopen(kb).verify()
    assert {p.kind for p in pending.problems} == {"lexical"}
    assert any("interrupted write" in n for n in pending.notes)
    log = load_sources(base.path)
    log.store_version = store.version  # committed: now the record and the store disagree
    save_sources(base.path, log)
    meta = base.path / "lexical" / "meta.json"  # and the broken lexical index claims it too
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "store_version": store.version}))
    report = reopen(kb).verify()
    kinds = {p.kind for p in report.problems}
    assert {"orphan", "lexical"} <= kinds and not report.notes
    repaired = reopen(kb).verify(repair=True)
    assert repaired.ok, repaired.problems
    assert repaired.repaired
    final = reopen(kb)
    assert final.store.count() == sum(len(r.chunk_ids) for r in final.sources())


def test_uncommitted_writes_are_invisible_and_rolled_back(kb, docs):
    base = reopen(kb)
    committed_rows = base.store.count()
    store = base.index.writable_store()
    store.add([Chunk(id="ghost", source="/ghost.txt", text="ghost text", start=0, end=10)],
              np.ones((1, 64), dtype=np.float32) / 8.0)
    reader = reopen(kb)
    assert reader.store.count() == committed_rows  # readers see the committed version
    assert all(h.chunk.id != "ghost" for h in reader.search("ghost text", k=50, mode="dense"))
    seen = reopen(kb).verify()  # the committed version is whole; the ghost is a note
    assert seen.ok and "interrupted write" in seen.notes[0]
    reopen(kb).ingest([docs])  # the next writer rolls the ghost back
    assert "ghost" not in {c.id for c in reopen(kb).store.scan()}
    assert reopen(kb).verify().ok


def test_reembed_switches_embedder(kb):
    base = reopen(kb)
    n = base.reembed(FakeEmbedder(dimension=32, name="fake-32"))
    assert n == base.store.count()
    opened = KnowledgeBase.open(kb.path, embedder=FakeEmbedder(dimension=32, name="fake-32"))
    assert opened.manifest.dimension == 32 and opened.verify().ok
    assert opened.search("topic 3", k=1, mode="dense")[0].chunk.source.endswith("doc3.txt")


def test_second_writer_waits_then_fails_clearly(kb, docs):
    base = KnowledgeBase.open(kb.path, fake_settings(lock_timeout_s=0.2))
    with write_lock(kb.path):
        with pytest.raises(KnowledgeBaseError, match="another process is writing"):
            base.ingest([docs])
    assert base.ingest([docs]).exit_code == 0  # free again


def test_bad_inputs_are_reported_and_nothing_is_lost(tmp_path, kb, docs):
    bad = tmp_path / "bad"
    bad.mkdir()
    french = "Café crème brûlée à la française, très bon."
    (bad / "latin1.txt").write_bytes(french.encode("latin-1"))
    (bad / "gbk.txt").write_bytes("这是一个中文文件，用于测试编码检测是否正确。".encode("gbk"))
    (bad / "binary.txt").write_bytes(os.urandom(2000).replace(b"\n", b"\x00") + b"\x00" * 10)
    (bad / "empty.md").write_text("")
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n%garbage")
    (bad / "big.txt").write_text("x " * 600_000)
    os.symlink(bad / "loop_b.txt", bad / "loop_a.txt")
    os.symlink(bad / "loop_a.txt", bad / "loop_b.txt")
    os.symlink(bad, bad / "self")  # a folder link loop: not followed
    before = {c.id for c in reopen(kb).store.scan()}
    base = KnowledgeBase.open(kb.path, fake_settings(max_file_mb=1))
    report = base.ingest([bad])
    failed = {p.rsplit("/", 1)[-1]: reason for p, reason in report.failed}
    assert set(failed) == {"binary.txt", "empty.md", "corrupt.pdf", "big.txt", "loop_a.txt",
                           "loop_b.txt", "self"}
    assert "binary" in failed["binary.txt"] and "MB limit" in failed["big.txt"]
    assert "symbolic links" in failed["loop_a.txt"] and "not followed" in failed["self"]
    assert {s.rsplit("/", 1)[-1] for s in report.added} == {"latin1.txt", "gbk.txt"}
    assert report.exit_code == 2
    after = {c.id for c in reopen(kb).store.scan()}
    assert before <= after  # nothing already stored was lost
    texts = " ".join(c.text for c in reopen(kb).store.scan())
    assert "crème brûlée" in texts and "中文文件" in texts


def test_unreadable_file(tmp_path, kb):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    path.chmod(0)
    report = reopen(kb).ingest([path])
    assert report.failed and "cannot read" in report.failed[0][1]


def test_record_file_keeps_store_version(kb):
    log = load_sources(kb.path)
    assert log.store_version == reopen(kb).store.version


def test_record_without_store_version_keeps_its_rows(kb, docs):
    import json

    path = kb.path / "sources.json"
    data = json.loads(path.read_text())
    del data["store_version"]  # as written before store versions were recorded
    path.write_text(json.dumps(data))
    rows = reopen(kb).store.count()
    report = reopen(kb).ingest([docs])
    assert len(report.unchanged) == 6
    assert reopen(kb).store.count() == rows and reopen(kb).verify().ok


def test_hostile_paths_are_skipped_with_their_reason_once_and_nothing_hangs(tmp_path, kb, docs):
    import zipfile

    outside = tmp_path / "outside.txt"
    outside.write_text("A secret that lives outside the folder.")
    (docs / "zero.txt").symlink_to("/dev/zero")  # a device: never ends
    (docs / "secret.txt").symlink_to(outside)  # leaves the folder
    os.mkfifo(docs / "pipe.txt")  # reading it would block forever
    (docs / "loop").symlink_to(docs)  # a link loop
    (docs / "inside.txt").symlink_to(docs / "doc0.txt")  # stays inside: read
    bomb = docs / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<w>" + b" " * (80 * 1024 * 1024) + b"</w>")
    assert bomb.stat().st_size < 1024 * 1024
    before = {r.source for r in kb.sources()}
    report = kb.ingest([docs])
    reasons = {os.path.basename(path): reason for path, reason in report.failed}
    assert len(report.failed) == len(reasons) == 5  # each skipped path once
    assert "outside the folder" in reasons["secret.txt"]
    assert "outside the folder" in reasons["zero.txt"]
    assert "named pipe" in reasons["pipe.txt"]
    assert "not followed" in reasons["loop"]
    assert "expands to" in reasons["bomb.docx"]
    sources = {r.source for r in kb.sources()}
    assert before <= sources and not any("secret" in s for s in sources)
    assert any(s.endswith("inside.txt") for s in sources)
    # named explicitly, a device is still refused: only regular files are read
    report = kb.ingest([docs / "zero.txt"])
    assert "device" in report.failed[0][1]


def test_sources_are_shown_relative_and_stay_stored_absolute(tmp_path, kb, docs):
    import json

    from ragtune.display import relabel_hits

    (docs / "guide").mkdir()
    (docs / "guide" / "install.txt").write_text("Install the package with pip, then run it.")
    loose = tmp_path / "elsewhere" / "notes.txt"
    loose.parent.mkdir()
    loose.write_text("A loose note about the parking garage on level two.")
    kb.ingest([docs])
    kb.ingest([loose])
    names = kb.display_names()
    assert names[str(docs / "guide" / "install.txt")] == "docs/guide/install.txt"
    assert names[str(docs / "doc0.txt")] == "docs/doc0.txt"
    assert names[str(loose)] == "notes.txt"  # a file named by itself: its name
    hits = relabel_hits(kb.search("install the package with pip", k=3), names)
    assert hits[0].chunk.source == "docs/guide/install.txt"
    assert not any(str(tmp_path) in h.chunk.source for h in hits)
    # the stored ids (what sync, dedup and remove use) are unchanged: absolute paths
    stored = json.loads((kb.path / "sources.json").read_text())["sources"]
    assert str(docs / "doc0.txt") in stored and all(s.startswith("/") for s in stored)
    assert str(kb.path.parent) not in json.dumps([r["display"] for r in stored.values()])
    assert kb.remove([str(loose)]) == [str(loose)]


def test_a_record_from_before_display_names_syncs_without_embedding_and_gets_one(kb, docs):
    import json

    path = kb.path / "sources.json"
    data = json.loads(path.read_text())
    for record in data["sources"].values():  # a knowledge base written by an older ragtune
        del record["display"]
    path.write_text(json.dumps(data))
    fresh = reopen(kb)
    assert fresh.display_names()[str(docs / "doc0.txt")] == "doc0.txt"  # never absolute
    report = fresh.ingest([docs])
    assert len(report.unchanged) == 6 and report.chunks_embedded == 0
    assert fresh._embedder is None and fresh.verify().ok
    assert fresh.display_names()[str(docs / "doc0.txt")] == "docs/doc0.txt"
    assert fresh.search("Document 3 topic 3", k=1)[0].chunk.source == str(docs / "doc3.txt")


def test_a_glob_on_the_shown_name_filters(kb, docs):
    from ragtune.retrieve.filters import Filter

    hits = kb.search("Document 3 topic 3", k=5, filter=Filter(source="docs/doc3.*"))
    assert hits and {h.chunk.source for h in hits} == {str(docs / "doc3.txt")}
    assert kb.search("Document 3 topic 3", k=5, filter=Filter(source="other/doc3.*")) == []
