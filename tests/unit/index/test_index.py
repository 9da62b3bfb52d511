"""The Index's commit: the lexical index follows every write from its tokenised corpus,
without reading the whole store, and catches up after an interrupted write or an upgrade."""

import shutil

import numpy as np
import pytest

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings
from ragtune.errors import ConfigError, EmbedderMismatchError
from ragtune.index.bm25 import BM25Index
from ragtune.index.lancedb_store import LanceDBStore
from ragtune.index.manifest import Manifest

SETTINGS = Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"))
QUERIES = ["apples orchard", "river boats", "winter snow mountains", "kettle tea", "zebra"]


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    texts = {"a": "Apples grow in the orchard. The orchard has apples and pears.",
             "b": "Boats sail on the river. The river runs to the sea.",
             "c": "Snow falls in winter on the mountains. Mountains are cold.",
             "d": "The kettle boils water for tea. Tea is served hot."}
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text)
    return folder


def full_rebuild(kb: KnowledgeBase) -> BM25Index:
    chunks = list(kb.store.scan())
    return BM25Index.build([c.id for c in chunks], [c.index_text for c in chunks])


def assert_same_as_rebuild(kb: KnowledgeBase) -> None:
    lexical, reference = kb.lexical, full_rebuild(kb)
    assert sorted(lexical.ids) == sorted(reference.ids)
    for query in QUERIES:
        got = dict(lexical.search(query, k=10))
        want = dict(reference.search(query, k=10))
        assert got.keys() == want.keys(), query
        assert np.allclose([got[i] for i in want], list(want.values()), rtol=1e-6), query


@pytest.fixture
def no_scan(monkeypatch):
    """Make reading every chunk of the store an error."""
    def scan(self):
        raise AssertionError("the whole store was read")
        yield  # pragma: no cover

    def forbid() -> None:
        monkeypatch.setattr(LanceDBStore, "scan", scan)
    return forbid


def test_writes_update_the_lexical_index_without_reading_the_store(tmp_path, docs, no_scan):
    kb = KnowledgeBase.create(tmp_path / "kb", SETTINGS)
    kb.ingest([docs / "a.txt", docs / "b.txt"])
    no_scan()
    kb.ingest([docs])  # adds c and d
    (docs / "a.txt").write_text("Zebras graze on the plain. Apples are gone.")
    kb.ingest([docs])  # replaces a's chunks
    (docs / "b.txt").unlink()
    kb.ingest([docs])  # prunes b
    kb.remove([str(docs / "c.txt")])
    opened = KnowledgeBase.open(kb.path, SETTINGS)
    assert opened.lexical.store_version == opened.version
    assert opened.search("zebra", k=1, mode="lexical")[0].chunk.source.endswith("a.txt")
    assert not opened.search("river boats", mode="lexical")


def test_the_incremental_index_scores_as_a_full_rebuild(tmp_path, docs):
    kb = KnowledgeBase.create(tmp_path / "kb", SETTINGS)
    kb.ingest([docs / "a.txt"])
    kb.ingest([docs])
    (docs / "d.txt").write_text("Tea and apples by the river, in winter.")
    kb.ingest([docs])
    kb.remove([str(docs / "b.txt")])
    assert_same_as_rebuild(KnowledgeBase.open(kb.path, SETTINGS))


def test_a_knowledge_base_without_the_tokenised_corpus_opens_and_migrates(tmp_path, docs,
                                                                           no_scan):
    kb = KnowledgeBase.create(tmp_path / "kb", SETTINGS)
    kb.ingest([docs / "a.txt", docs / "b.txt"])
    for name in ("tokens.npz", "vocab.json"):  # as written before the corpus was kept
        (kb.path / "lexical" / name).unlink()
    old = KnowledgeBase.open(kb.path, SETTINGS)
    assert old.lexical.corpus is None and old.search("apples", k=1, mode="lexical")
    old.ingest([docs / "c.txt"])  # the first write builds the corpus from the store
    assert (kb.path / "lexical" / "tokens.npz").exists()
    no_scan()
    old.ingest([docs / "d.txt"])  # the next one needs no scan
    assert KnowledgeBase.open(kb.path, SETTINGS).search("kettle", k=1, mode="lexical")


def test_a_lexical_index_behind_the_record_catches_up_from_its_corpus(tmp_path, docs, no_scan):
    """As after a crash between the commit of the record and the lexical index's swap."""
    kb = KnowledgeBase.create(tmp_path / "kb", SETTINGS)
    kb.ingest([docs / "a.txt"])
    behind = tmp_path / "lexical-behind"
    shutil.copytree(kb.path / "lexical", behind)
    kb.ingest([docs])
    shutil.rmtree(kb.path / "lexical")
    shutil.copytree(behind, kb.path / "lexical")
    reader = KnowledgeBase.open(kb.path, SETTINGS)
    no_scan()
    assert reader.search("river boats", k=1, mode="lexical")  # caught up in memory
    assert reader.lexical.store_version == reader.version
    report = KnowledgeBase.open(kb.path, SETTINGS).verify()  # what searches see is whole
    assert report.ok and "lexical index on disk is behind" in report.notes[0]
    (docs / "e.txt").write_text("Owls hunt at night.")
    reader.ingest([docs])  # the next write saves the caught-up index
    assert BM25Index.stored_version(kb.path / "lexical") == reader.version
    assert len(BM25Index.load(kb.path / "lexical").ids) == sum(
        len(r.chunk_ids) for r in reader.sources())


def test_create_checks_the_store_and_embedder_it_is_given(tmp_path, docs):
    path = tmp_path / "kb"
    kb = KnowledgeBase.create(path, SETTINGS, embedder="fake-hash")
    assert Manifest.load(path).embedder_auto is False  # named: chosen on purpose
    with pytest.raises(ConfigError, match="already uses the lancedb store"):
        KnowledgeBase.create(path, SETTINGS, store="qdrant")
    with pytest.raises(EmbedderMismatchError, match="was built with embedder"):
        KnowledgeBase.create(path, SETTINGS, embedder="another-model")
    assert KnowledgeBase.create(path, SETTINGS, store="lancedb").path == kb.path
