"""Conformance checks every implementation of a role must pass: vector stores, embedders,
generators, loaders, retrievers, rerankers and pipelines.

Call them from a test with a fresh instance; each raises AssertionError naming the rule.

    def test_my_store(tmp_path):
        check_vector_store(lambda dim: MyStore(tmp_path, dim))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ragtune.documents.protocol import Loader
from ragtune.index.protocol import VectorStore
from ragtune.models.protocol import Embedder, Generator
from ragtune.pipelines.protocol import Pipeline
from ragtune.retrieve.protocol import Retriever
from ragtune.retrieve.rerank import Reranker
from ragtune.types import Answer, Chunk, Document, Hit


def _chunk(i: int, source: str = "doc.txt", page: int | None = None) -> Chunk:
    return Chunk(id=f"c{i:03d}", source=source, text=f"chunk number {i}", start=i * 10,
                 end=i * 10 + 9, page=page, heading="H", line=i + 1, title="T", context="T › H")


def check_vector_store(make: Callable[[int], VectorStore], dimension: int = 8) -> None:
    store = make(dimension)
    assert isinstance(store, VectorStore), "does not satisfy the VectorStore protocol"
    assert store.dimension == dimension, "dimension not kept"
    assert store.search(np.ones(dimension, dtype=np.float32), 5) == [], "new store not empty"
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(10, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [_chunk(i, page=i % 3 + 1 if i % 2 else None) for i in range(10)]
    store.add(chunks, vectors)
    hits = store.search(vectors[3], 3)
    assert hits[0][0] == "c003", "a stored vector is not its own nearest neighbour"
    assert abs(hits[0][1] - 1.0) < 1e-4, f"self-similarity should be 1.0, got {hits[0][1]}"
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True), "not best first"
    assert store.get(["c003"])["c003"] == chunks[3], "chunk fields not round-tripped"
    assert len(store.search(vectors[0], 50)) == 10, "k larger than the store"
    got = store.get(["c001", "c005", "missing"])
    assert set(got) == {"c001", "c005"}, "get returned wrong ids"
    assert got["c001"].page == 2 and got["c001"].context == "T › H", "metadata lost"
    store.delete(["c003", "c004"])
    assert all(i not in ("c003", "c004") for i, _ in store.search(vectors[3], 10)), \
        "deleted chunks still returned"
    assert sorted(c.id for c in store.scan()) == [f"c{i:03d}" for i in range(10)
                                                    if i not in (3, 4)], "scan disagrees"
    try:
        store.add([_chunk(99)], np.zeros((1, dimension + 1), dtype=np.float32))
    except ValueError:
        pass
    else:
        raise AssertionError("a vector of the wrong dimension was accepted")


def check_embedder(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder), "does not satisfy the Embedder protocol"
    v = embedder.embed(["The cat sat on the mat.", "A cat was sitting on a mat.",
                        "Quarterly revenue grew by 8 percent."])
    assert v.shape == (3, embedder.dimension) and v.dtype == np.float32, "bad shape or dtype"
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3), "vectors not normalised"
    assert v[0] @ v[1] > v[0] @ v[2], "paraphrase not closer than an unrelated sentence"
    assert embedder.embed([]).shape == (0, embedder.dimension), "empty input"
    counts = embedder.count_tokens(["one two three", ""])
    assert counts[0] > 0 and counts[1] == 0, "token counts"


def check_generator(generator: Generator) -> None:
    assert isinstance(generator, Generator), "does not satisfy the Generator protocol"
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What is the capital of France?"}]
    n = generator.count_tokens(messages)  # type: ignore[arg-type]
    assert 0 < n < generator.context_window, "prompt token count out of range"
    out = generator.generate(messages, max_tokens=16)  # type: ignore[arg-type]
    assert isinstance(out.text, str) and out.prompt_tokens > 0, "completion incomplete"
    assert 0 < out.completion_tokens <= 16, "max_tokens not respected"
    streamed = "".join(generator.stream(messages, max_tokens=16))  # type: ignore[arg-type]
    assert streamed.strip() == out.text.strip(), "stream and generate disagree (greedy)"


def check_loader(loader: Loader, path: Path, phrase: str) -> None:
    """``path`` is a file the loader reads that contains ``phrase`` (in one paragraph)."""
    docs = loader(path, "given/source.name")
    assert isinstance(docs, list) and docs, "no documents from a readable file"
    assert all(isinstance(d, Document) for d in docs), "not Document objects"
    assert all(d.source == "given/source.name" for d in docs), "source not the one given"
    text = " ".join(" ".join(d.text.split()) for d in docs)
    assert phrase in text, f"the file's text {phrase!r} is not in the documents"
    for doc in docs:
        full = doc.text
        for section in doc.sections:
            assert full[section.start:section.start + len(section.text)] == section.text, \
                "a section's start is not its offset in the document's text"
    assert loader(path, "given/source.name") == docs, "reading twice gave other documents"


def check_retriever(retriever: Retriever, query: str, source: str, *, size: int) -> None:
    """``retriever`` searches a corpus of ``size`` chunks in which ``source`` holds the
    chunk that answers ``query``."""
    assert isinstance(retriever, Retriever), "does not satisfy the Retriever protocol"
    hits = retriever.retrieve(query, 3)
    assert isinstance(hits, list) and all(isinstance(h, Hit) for h in hits), "not Hit objects"
    assert 0 < len(hits) <= 3, f"asked for 3 hits, got {len(hits)}"
    assert source in [h.chunk.source for h in hits], f"{source} not in the top 3"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True), "hits not best first"
    every = retriever.retrieve(query, size + 10)
    ids = [h.chunk.id for h in every]
    assert len(ids) == len(set(ids)), "a chunk returned twice"
    assert len(ids) <= size, f"{len(ids)} hits from a corpus of {size} chunks"
    assert [h.chunk.id for h in retriever.retrieve(query, 1)] == ids[:1], \
        "the best hit depends on k"
    assert retriever.retrieve(query, 3) == hits, "the same search gave other hits"


def check_reranker(reranker: Reranker, query: str, hits: list[Hit]) -> None:
    """``hits``: at least two hits for ``query`` (any order)."""
    assert len(hits) >= 2, "give at least two hits"
    out = reranker.rerank(query, hits)
    assert isinstance(out, list) and len(out) == len(hits), "hits added or lost"
    assert sorted(h.chunk.id for h in out) == sorted(h.chunk.id for h in hits), \
        "not the same chunks"
    given = {h.chunk.id: h.chunk for h in hits}
    assert all(h.chunk == given[h.chunk.id] for h in out), "a chunk was changed"
    scores = [h.score for h in out]
    assert scores == sorted(scores, reverse=True), "not best first"
    assert reranker.rerank(query, []) == [], "no hits in, no hits out"
    again = reranker.rerank(query, list(reversed(hits)))
    assert [h.chunk.id for h in again] == [h.chunk.id for h in out], \
        "the order depends on the order the hits came in"


def check_pipeline(pipeline: Pipeline, question: str) -> None:
    """``pipeline`` answers ``question`` over a knowledge base that holds its answer."""
    answer = pipeline.answer(question)
    assert isinstance(answer, Answer) and answer.question == question, "not this question's"
    assert isinstance(answer.text, str), "no text"
    assert answer.steps, "no steps recorded"
    timings = answer.timings
    assert "total_ms" in timings and timings["total_ms"] >= 0, "no total time"
    assert all(0 <= v <= timings["total_ms"] + 1 for v in timings.values()), \
        "a step took longer than the whole answer"
    shown = {c.id for c in answer.context}
    assert all(c.chunk.id in shown for c in answer.citations), \
        "a citation of a source the model was not shown"
    if answer.abstained:
        assert not answer.citations, "an abstention with citations"
