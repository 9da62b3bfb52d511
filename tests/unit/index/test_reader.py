"""The in-memory read view: exact and HNSW search, kept current across writes."""

import numpy as np
import pytest

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings, RetrievalSettings
from ragtune.index.reader import ANN_DIR, ReadView


def settings(ann_min_rows):
    return Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"),
                    retrieval=RetrievalSettings(ann_min_rows=ann_min_rows))


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    for i in range(120):
        text = " ".join(rng.choice(words, size=25)) + "."
        (folder / f"d{i:03d}.txt").write_text(text)
    return folder


def test_hnsw_graph_matches_exact_search_and_follows_writes(tmp_path, corpus):
    kb = KnowledgeBase.create(tmp_path / "kb", settings(ann_min_rows=50))
    kb.ingest([corpus])
    graphs = list((kb.path / ANN_DIR).glob("*.usearch"))
    assert [g.name for g in graphs] == [f"hnsw-v{kb.version}.usearch"]
    approx = KnowledgeBase.open(kb.path, settings(50))
    exact = KnowledgeBase.open(kb.path, settings(10_000))
    assert approx.reader.approximate and not exact.reader.approximate
    queries = [(corpus / f"d{i:03d}.txt").read_text() for i in range(0, 120, 7)]
    overlap = []
    for q in queries:
        v = approx.embedder.embed([q])[0]
        a = [i for i, _ in approx.reader.search(v, 10)]
        e = [i for i, _ in exact.reader.search(v, 10)]
        overlap.append(len(set(a) & set(e)) / 10)
        assert a[0] == e[0]
    assert np.mean(overlap) >= 0.95

    # an edit and a delete: the next version's graph drops and adds the right chunks
    (corpus / "d000.txt").write_text("completely new words here.")
    (corpus / "d001.txt").unlink()
    kb.ingest([corpus])
    graphs = list((kb.path / ANN_DIR).glob("*.usearch"))
    assert [g.name for g in graphs] == [f"hnsw-v{kb.version}.usearch"]
    fresh = KnowledgeBase.open(kb.path, settings(50))
    assert fresh.reader.approximate and len(fresh.reader) == 119
    v = fresh.embedder.embed(["completely new words here."])[0]
    top = fresh.reader.get([fresh.reader.search(v, 1)[0][0]])
    assert next(iter(top.values())).source.endswith("d000.txt")
    assert all(not c.source.endswith("d001.txt") for c in fresh.reader.get(fresh.reader.ids)
               .values())


def test_small_knowledge_bases_have_no_graph(tmp_path, corpus):
    kb = KnowledgeBase.create(tmp_path / "kb", settings(ann_min_rows=10_000))
    kb.ingest([corpus])
    assert not (kb.path / ANN_DIR).exists()
    assert not KnowledgeBase.open(kb.path, settings(10_000)).reader.approximate


def test_view_get_and_masked_search(tmp_path, corpus):
    kb = KnowledgeBase.create(tmp_path / "kb", settings(ann_min_rows=10_000))
    kb.ingest([corpus])
    view: ReadView = KnowledgeBase.open(kb.path, settings(10_000)).reader
    assert view.get([]) == {} and view.get(["missing"]) == {}
    mask = np.zeros(len(view), dtype=bool)
    mask[:5] = True
    hits = view.search(np.ones(64, dtype=np.float32) / 8, 20, mask=mask)
    assert {i for i, _ in hits} <= set(view.ids[:5])


def test_hnsw_view_gives_moments_and_vectors_for_zscore_fusion(tmp_path, corpus):
    kb = KnowledgeBase.create(tmp_path / "kb", settings(ann_min_rows=50))
    kb.ingest([corpus])
    approx = KnowledgeBase.open(kb.path, settings(50))
    exact = KnowledgeBase.open(kb.path, settings(10_000))
    v = exact.embedder.embed(["w1 w2 w3"])[0]
    ids = exact.reader.ids[:5]
    # the graph keeps float16 vectors: equal to about 3 decimals
    assert np.allclose(approx.reader.vectors(ids), exact.reader.vectors(ids), atol=2e-3)
    assert approx.reader._vectors is None  # a few vectors read, not the whole collection
    assert approx.reader.moments(v) == pytest.approx(exact.reader.moments(v), abs=1e-3)
    cosines = exact.reader.vectors(exact.reader.ids) @ v
    assert exact.reader.moments(v) == pytest.approx((cosines.mean(), cosines.std()), abs=1e-6)
    a = [h.chunk.id for h in approx.search("w1 w2 w3", k=5)]
    e = [h.chunk.id for h in exact.search("w1 w2 w3", k=5)]
    assert a[0] == e[0] and len(set(a) & set(e)) >= 4


def test_moments_are_saved_with_the_graph_and_follow_writes(tmp_path, corpus):
    kb = KnowledgeBase.create(tmp_path / "kb", settings(ann_min_rows=50))
    kb.ingest([corpus])
    saved = list((kb.path / ANN_DIR).glob("moments-v*.npz"))
    assert [m.name for m in saved] == [f"moments-v{kb.version}.npz"]
    view = KnowledgeBase.open(kb.path, settings(50)).reader
    assert view._moments is not None  # loaded, not computed from every vector
    exact = KnowledgeBase.open(kb.path, settings(10_000)).reader
    v = kb.embedder.embed(["w5 w6"])[0]
    assert view.moments(v) == pytest.approx(exact.moments(v), abs=1e-3)
    (corpus / "d000.txt").write_text("completely new words here.")
    kb.ingest([corpus])
    saved = list((kb.path / ANN_DIR).glob("moments-v*.npz"))
    assert [m.name for m in saved] == [f"moments-v{kb.version}.npz"]


def test_writes_update_the_graph_and_moments_without_reading_every_vector(tmp_path, corpus,
                                                                         monkeypatch):
    from ragtune.index.lancedb_store import LanceDBStore

    kb = KnowledgeBase.create(tmp_path / "kb", settings(ann_min_rows=50))
    kb.ingest([corpus])

    def every_vector(self):
        raise AssertionError("every vector of the store was read")

    monkeypatch.setattr(LanceDBStore, "ids_and_vectors", every_vector)
    for round_ in range(3):  # edits, a deletion and new files, three versions in a row
        (corpus / f"d{round_:03d}.txt").write_text(f"fresh words round {round_} w1 w2.")
        (corpus / f"d{100 + round_:03d}.txt").unlink()
        (corpus / f"new{round_}.txt").write_text(f"brand new file {round_} w7 w8 w9.")
        kb.ingest([corpus])
    kb.remove([str(corpus / "d050.txt")])
    monkeypatch.undo()

    approx = KnowledgeBase.open(kb.path, settings(50)).reader
    exact = KnowledgeBase.open(kb.path, settings(10_000)).reader
    graph_keys = set(int(k) for k in approx._graph.keys)
    assert graph_keys == {int(k) for k in approx._keys} and len(approx) == len(exact) == 119
    for text in ("w5 w6", "fresh words round 2", "brand new file 1"):
        v = kb.embedder.embed([text])[0]
        # removals subtract the graph's float16 copies: the sums drift by far less than 1e-4
        assert approx.moments(v) == pytest.approx(exact.moments(v), abs=1e-4)
        assert approx.search(v, 1)[0][0] == exact.search(v, 1)[0][0]
