"""``ragtune kb reembed``: every chunk kept, one commit, nothing lost when it fails; the
language of a new knowledge base's documents. Fake embedders (the real multilingual one
runs in tests/integration/test_multilingual.py)."""

import json

import numpy as np
import pytest

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings, IngestSettings, RetrievalSettings, StoreSettings
from ragtune.errors import EmbedderMismatchError, KnowledgeBaseError
from ragtune.index.lancedb_store import LanceDBStore
from ragtune.index.maintenance import corpus_language
from ragtune.index.manifest import Manifest
from ragtune.index.sources import load_sources, save_sources
from ragtune.testing import FakeEmbedder


def settings(**retrieval) -> Settings:
    return Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"),
                    ingest=IngestSettings(batch_chunks=4),
                    retrieval=RetrievalSettings(**retrieval))


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    topics = ["vacation days for employees", "the eiffel tower in paris", "quarterly net sales",
              "photosynthesis in green plants", "the great wall of china", "tax on dividends"]
    for i, topic in enumerate(topics):
        (folder / f"doc{i}.md").write_text(
            f"# Part {i}\n\n" + " ".join(f"Sentence {j} is about {topic}." for j in range(40)))
    return folder


@pytest.fixture
def kb(tmp_path, docs):
    base = KnowledgeBase.create(tmp_path / "kb", settings(ann_min_rows=1))
    base.ingest([docs])
    return base


def rows(kb: KnowledgeBase) -> dict[str, dict]:
    store = kb.index.open_store()
    assert isinstance(store, LanceDBStore)
    table = store.rows([c for c in store.columns if c != "vector"]).to_pylist()
    return {r["id"]: r for r in table}


class Failing(FakeEmbedder):
    """Fails on its ``fail_at``-th call, as a model that runs out of memory would."""

    def __init__(self, fail_at: int, **kw) -> None:
        super().__init__(**kw)
        self.fail_at = fail_at

    def embed(self, texts):
        if self.calls + 1 == self.fail_at:
            self.calls += 1
            raise MemoryError("out of memory")
        return super().embed(texts)


def test_reembed_keeps_every_row_and_switches_in_one_commit(kb):
    before = rows(kb)
    assert len(before) > 8  # several batches of 4
    new = FakeEmbedder(dimension=32, name="fake-32")
    assert kb.reembed(new) == len(before)
    after = rows(kb)
    assert after == before  # text, provenance, ingest time: all kept, only vectors changed
    manifest = json.loads((kb.path / "manifest.json").read_text())
    assert manifest["embedder"] == {"backend": "custom", "model": "fake-32", "dimension": 32}
    assert manifest["format_version"] == 2 and manifest["store"]["table"].startswith("chunks_r")
    assert kb.index.open_store().tables() == [manifest["store"]["table"]]  # the old one is gone
    opened = KnowledgeBase.open(kb.path, settings(ann_min_rows=1), embedder=new)
    assert opened.verify().ok
    ids, vectors = opened.store.ids_and_vectors()
    chunk = opened.store.get([ids[0]])[ids[0]]
    assert np.allclose(vectors[0], new.embed([chunk.index_text])[0])
    # the vector graph was rebuilt for the new vectors (a 64-d graph would fail here)
    hit = opened.search("eiffel tower paris", k=1, mode="dense")[0]
    assert hit.chunk.source.endswith("doc1.md")
    assert json.loads((kb.path / "history.jsonl").read_text().splitlines()[-1])[
        "operation"] == "reembed"
    with pytest.raises(EmbedderMismatchError, match="ragtune kb reembed"):
        KnowledgeBase.open(kb.path, embedder=FakeEmbedder())  # mixing is refused


def test_a_failed_reembed_leaves_the_knowledge_base_as_it_was(kb):
    manifest = (kb.path / "manifest.json").read_bytes()
    record = (kb.path / "sources.json").read_bytes()
    before = rows(kb)
    answer = [h.chunk.id for h in kb.search("great wall china", k=3)]
    with pytest.raises(MemoryError):
        kb.reembed(Failing(fail_at=2, dimension=32, name="fake-32"))
    assert (kb.path / "manifest.json").read_bytes() == manifest
    assert (kb.path / "sources.json").read_bytes() == record
    opened = KnowledgeBase.open(kb.path, settings())
    assert opened.index.open_store().tables() == ["chunks"]  # the half-written table was dropped
    assert rows(opened) == before and opened.verify().ok
    assert [h.chunk.id for h in opened.search("great wall china", k=3)] == answer
    # and the next attempt goes through
    assert opened.reembed(FakeEmbedder(dimension=32, name="fake-32")) == len(before)


def test_vectors_of_the_wrong_shape_are_refused_and_nothing_changes(kb):
    class Short(FakeEmbedder):
        def embed(self, texts):
            return super().embed(texts)[:-1]

    manifest = (kb.path / "manifest.json").read_bytes()
    with pytest.raises(KnowledgeBaseError, match="knowledge base is unchanged"):
        kb.reembed(Short(dimension=16, name="fake-16"))
    assert (kb.path / "manifest.json").read_bytes() == manifest


def test_every_step_of_the_commit_leaves_a_knowledge_base_that_opens(kb):
    """The commit writes the record (no version), the manifest, the record (new version):
    a crash after the first write still reads the committed rows, and the next re-embed
    drops a table that a crash left behind."""
    before = rows(kb)
    log = load_sources(kb.path)
    log.store_version = None  # as after the commit's first write
    save_sources(kb.path, log)
    store = kb.index.open_store()
    stale = LanceDBStore(store.path, 32, table="chunks_r1")  # as a crashed re-embed left it
    stale.add([c for c in store.scan()][:2], np.ones((2, 32), dtype=np.float32) / np.sqrt(32))
    opened = KnowledgeBase.open(kb.path, settings())
    assert rows(opened) == before and opened.search("tax dividends", k=1)
    assert sorted(opened.index.open_store().tables()) == ["chunks", "chunks_r1"]
    opened.reembed(FakeEmbedder(dimension=16, name="fake-16"))
    tables = opened.index.open_store().tables()
    assert len(tables) == 1 and tables[0] not in ("chunks", "chunks_r1")


def test_reembed_on_qdrant_keeps_every_chunk(tmp_path, docs):
    pytest.importorskip("qdrant_client")
    s = Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"),
                 store=StoreSettings(backend="qdrant"))
    with KnowledgeBase.create(tmp_path / "qkb", s) as base:
        base.ingest([docs])
        before = {c.id: c for c in base.store.scan()}
        old_collection = base.store.collection
        assert base.reembed(FakeEmbedder(dimension=32, name="fake-32")) == len(before)
        collection = base.manifest.store["collection"]
        assert collection != old_collection
    with KnowledgeBase.open(tmp_path / "qkb", s,
                            embedder=FakeEmbedder(dimension=32, name="fake-32")) as opened:
        assert {c.id: c for c in opened.store.scan()} == before
        assert opened.verify().ok
        assert not opened.store._client.collection_exists(old_collection)
        assert opened.search("eiffel tower paris", k=1, mode="dense")[0].chunk.source.endswith(
            "doc1.md")


def test_manifest_records_how_the_embedder_was_chosen(tmp_path):
    m = Manifest("sentence-transformers", "all-minilm-l6-v2", 384, 200, 40, embedder_auto=True)
    m.save(tmp_path)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["format_version"] == 1 and data["embedder"]["auto"] is True
    assert Manifest.load(tmp_path).embedder_auto is True
    data["format_version"] = 3
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(KnowledgeBaseError, match="format_version 3.*upgrade ragtune"):
        Manifest.load(tmp_path)


def test_an_embedder_chosen_on_purpose_is_not_marked_auto(tmp_path):
    auto = KnowledgeBase.create(tmp_path / "a", Settings(
        embedder=EmbedderSettings(backend="fake", model="fake-hash")))
    assert auto.manifest.embedder_auto is False  # a backend chosen on purpose
    custom = KnowledgeBase.create(tmp_path / "b", embedder=FakeEmbedder())
    assert custom.manifest.embedder_auto is False


def test_the_language_of_the_documents_to_ingest(tmp_path):
    zh, en, mixed = (tmp_path / n for n in ("zh", "en", "mixed"))
    for folder in (zh, en, mixed):
        folder.mkdir()
    (zh / "a.txt").write_text("苹果公司本季度的净销售额为830亿美元，同比增长百分之二。")
    (zh / "b.md").write_text("# 年度报告\n\n公司的 iPhone 销量在大中华区有所下降。")
    (en / "a.txt").write_text("Apple's net sales were 83.0 billion dollars this quarter.")
    (mixed / "a.txt").write_text("苹果公司本季度的净销售额为830亿美元。")
    (mixed / "b.txt").write_text("Net sales grew two percent.")
    (mixed / "c.txt").write_text("Services revenue reached a record.")
    (zh / "empty.txt").write_text("")
    assert corpus_language([zh]) == "zh"
    assert corpus_language([en]) == "en"
    assert corpus_language([mixed]) == "en"  # one file in three
    assert corpus_language([zh / "a.txt", en / "a.txt"]) == "zh"  # half is enough
    assert corpus_language([tmp_path / "missing"]) == "en"


def test_keep_embedder_records_a_choice_made_on_purpose(tmp_path):
    from ragtune.index.maintenance import keep_embedder

    base = KnowledgeBase.create(tmp_path / "kb", settings())
    base.manifest.embedder_auto = True  # as for a knowledge base left to the default
    base.manifest.save(base.path)
    keep_embedder(base.index)
    assert base.manifest.embedder_auto is False
    assert Manifest.load(base.path).embedder_auto is False
