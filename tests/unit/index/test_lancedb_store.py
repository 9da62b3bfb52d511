import pytest

from ragtune.errors import EmbedderMismatchError, KnowledgeBaseError
from ragtune.index.lancedb_store import LanceDBStore
from ragtune.index.manifest import Manifest
from ragtune.testing.contracts import check_vector_store


def test_lancedb_store_passes_the_contract(tmp_path):
    check_vector_store(lambda dim: LanceDBStore(tmp_path / "store", dim))


def test_store_refuses_another_dimension(tmp_path):
    LanceDBStore(tmp_path / "s", 8)
    with pytest.raises(KnowledgeBaseError, match="8-d"):
        LanceDBStore(tmp_path / "s", 16)


def test_manifest_roundtrip_and_mismatch(tmp_path):
    m = Manifest("sentence-transformers", "all-minilm-l6-v2", 384, 200, 40)
    m.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded.dimension == 384 and loaded.embedder_model == "all-minilm-l6-v2"
    with pytest.raises(EmbedderMismatchError, match="ragtune kb reembed"):
        loaded.check_embedder("sentence-transformers", "other-model", tmp_path)


def test_missing_and_corrupt_manifest(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="ragtune ingest PATH --kb"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(KnowledgeBaseError, match="corrupt"):
        Manifest.load(tmp_path)
