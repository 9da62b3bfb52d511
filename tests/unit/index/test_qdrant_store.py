"""The Qdrant store runs the same contract as LanceDB, in qdrant-client's local mode."""

import pytest

pytest.importorskip("qdrant_client")

from ragtune import KnowledgeBase, Settings  # noqa: E402
from ragtune.config import EmbedderSettings, StoreSettings  # noqa: E402
from ragtune.index.qdrant_store import QdrantStore, point_id  # noqa: E402
from ragtune.testing.contracts import check_vector_store  # noqa: E402


def test_qdrant_store_passes_the_contract(tmp_path):
    stores = []

    def make(dim):
        stores.append(QdrantStore(dim, collection="c", counter=tmp_path / "v.json",
                                  path=tmp_path / "q"))
        return stores[-1]

    check_vector_store(make)
    stores[0].close()


def test_point_ids_are_stable_uuids():
    assert point_id("abc") == point_id("abc") != point_id("abd")
    assert len(point_id("abc")) == 36


@pytest.fixture
def settings():
    return Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"),
                    store=StoreSettings(backend="qdrant"))


def test_knowledge_base_on_qdrant_syncs_searches_and_verifies(tmp_path, settings):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The warranty lasts two years from the date of purchase.")
    (docs / "b.txt").write_text("Returns are accepted within thirty days.")
    kb = KnowledgeBase.create(tmp_path / "kb", settings)
    assert kb.manifest.store["backend"] == "qdrant"
    assert len(kb.ingest([docs]).added) == 2
    assert kb.search("warranty years", k=1)[0].chunk.source.endswith("a.txt")
    assert kb.verify().ok
    (docs / "b.txt").unlink()
    report = kb.ingest([docs])
    assert len(report.removed) == 1 and kb.store.count() == 1
    assert kb.verify().ok
    kb.close()


def test_interrupted_write_is_reconciled(tmp_path, settings):
    import numpy as np

    from ragtune.types import Chunk

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Alpha text about apples.")
    kb = KnowledgeBase.create(tmp_path / "kb", settings)
    kb.ingest([docs])
    # a write that never committed: an extra row the record does not know
    kb.index.open_store().add([Chunk(id="ghost", source="/ghost.txt", text="g", start=0, end=1)],
                         np.ones((1, 64), dtype=np.float32) / 8)
    assert not kb.verify().ok
    (docs / "b.txt").write_text("Beta text about bananas.")
    kb.ingest([docs])
    assert "ghost" not in {c.id for c in kb.store.scan()}
    assert kb.verify().ok and len(kb.sources()) == 2
    kb.close()
