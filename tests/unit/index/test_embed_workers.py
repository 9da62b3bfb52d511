"""``ingest --workers N`` and ``--ray local``: embedding elsewhere, one writer, the same
knowledge base as a plain ingest (verify passes, the same vectors)."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from ragtune import KnowledgeBase
from ragtune.config import (
    ChunkSettings,
    EmbedderSettings,
    IngestSettings,
    Settings,
    StoreSettings,
)
from ragtune.errors import ConfigError
from ragtune.testing import FakeEmbedder

TOPICS = ["vacation days and paid leave", "the Eiffel Tower in Paris", "quarterly revenue",
          "LoRA adapters for small models", "Ray clusters and actors", "vector stores"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    for i in range(24):
        topic = TOPICS[i % len(TOPICS)]
        (folder / f"doc{i:02d}.md").write_text(
            f"# Note {i}\n\n" + " ".join(f"Sentence {j} of note {i} is about {topic}."
                                         for j in range(40)))
    return folder


def settings(store: str = "lancedb") -> Settings:
    # the fake embedder by its registered name, so worker processes build it by name too
    return Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"),
                    chunking=ChunkSettings(max_tokens=64, overlap=8),
                    ingest=IngestSettings(batch_chunks=32), store=StoreSettings(backend=store))


def vectors(kb: KnowledgeBase) -> dict[str, np.ndarray]:
    ids, matrix = kb.store.ids_and_vectors()
    return dict(zip(ids, matrix, strict=True))


@pytest.fixture(scope="module")
def plain(docs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    with KnowledgeBase.create(tmp_path_factory.mktemp("plain") / "kb", settings()) as kb:
        report = kb.ingest([docs])
        assert report.chunks_embedded > 100 and kb.embedder.calls > 0
        return vectors(kb)


def check_same(kb: KnowledgeBase, plain: dict[str, np.ndarray]) -> None:
    assert kb.verify().ok
    mine = vectors(kb)
    assert mine.keys() == plain.keys()
    for key, vector in plain.items():
        np.testing.assert_array_equal(mine[key], vector)


def test_workers_embed_in_other_processes_and_store_the_same(docs, plain, tmp_path):
    with KnowledgeBase.create(tmp_path / "kb", settings()) as kb:
        report = kb.ingest([docs], workers=2)
        assert report.chunks_embedded == len(plain) and not report.failed
        assert kb.embedder.calls == 0  # this process only counted tokens and wrote
        check_same(kb, plain)
        again = kb.ingest([docs], workers=2)  # a sync: nothing to embed, no workers started
        assert again.chunks_embedded == 0 and len(again.unchanged) == 24


def test_one_writer_into_qdrant_too(docs, tmp_path):
    pytest.importorskip("qdrant_client", reason="qdrant-client is not installed")
    # against a plain ingest into qdrant: it normalises vectors again as it stores them
    with KnowledgeBase.create(tmp_path / "plain", settings("qdrant")) as kb:
        kb.ingest([docs])
        reference = vectors(kb)
    with KnowledgeBase.create(tmp_path / "kb", settings("qdrant")) as kb:
        assert kb.store_spec.backend == "qdrant"
        kb.ingest([docs], workers=2)
        assert kb.embedder.calls == 0
        check_same(kb, reference)


def test_the_cli_takes_workers(docs, plain, tmp_path):
    from typer.testing import CliRunner

    from ragtune.cli import app

    result = CliRunner().invoke(app, ["ingest", str(docs), "--kb", str(tmp_path / "kb"),
                                      "--embedder", "fake-hash", "--workers", "2", "--json"],
                                env={"RAGTUNE_EMBEDDER_BACKEND": "fake",
                                     "RAGTUNE_CHUNKING_MAX_TOKENS": "64",
                                     "RAGTUNE_CHUNKING_OVERLAP": "8"})
    assert result.exit_code == 0, result.output
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        check_same(kb, plain)
    bad = CliRunner().invoke(app, ["ingest", str(docs), "--kb", str(tmp_path / "kb2"),
                                   "--workers", "0"])
    assert bad.exit_code == 2 and "must be at least 1, got 0" in bad.output


def test_ray_data_embeds_into_the_same_knowledge_base(docs, plain, tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install "
                                           "'ragtune[ray]'")
    with KnowledgeBase.create(tmp_path / "kb", settings()) as kb:
        report = kb.ingest([docs], ray="local", workers=2)
        assert report.chunks_embedded == len(plain)
        assert kb.embedder.calls == 0
        check_same(kb, plain)


class _Unpicklable(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


def test_an_embedder_that_cannot_travel_is_a_clear_error(docs, tmp_path):
    with pytest.raises(TypeError):
        pickle.dumps(_Unpicklable())
    with KnowledgeBase.create(tmp_path / "kb", embedder=_Unpicklable()) as kb:
        with pytest.raises(ConfigError, match="cannot be sent to worker processes.*without "
                                              "--workers"):
            kb.ingest([docs], workers=2)
        with pytest.raises(ConfigError, match="--workers must be at least 1"):
            kb.ingest([docs], workers=0)

