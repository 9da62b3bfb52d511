"""Conformance checks every implementation of a role must pass.

Call them from a test with a fresh instance; each raises AssertionError naming the rule.

    def test_my_store(tmp_path):
        check_vector_store(lambda dim: MyStore(tmp_path, dim))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ragtune.index.protocol import VectorStore
from ragtune.models.protocol import Embedder, Generator
from ragtune.types import Chunk


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
