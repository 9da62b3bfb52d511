import numpy as np

from ragtune.models.embedders import CachedEmbedder
from ragtune.testing import FakeEmbedder


class Counting(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.batches = []

    def embed(self, texts):
        self.batches.append(list(texts))
        return super().embed(texts)


def test_cached_vectors_equal_fresh_ones_and_are_not_recomputed():
    inner = Counting()
    cached = CachedEmbedder(inner, max_items=3)
    texts = ["alpha beta", "gamma", "alpha beta", "delta"]
    np.testing.assert_allclose(cached.embed(texts), FakeEmbedder().embed(texts))
    assert inner.batches == [["alpha beta", "gamma", "delta"]]  # one batch, duplicates once
    np.testing.assert_allclose(cached.embed(["gamma"]), FakeEmbedder().embed(["gamma"]))
    assert len(inner.batches) == 1 and cached.hits == 2 and cached.misses == 3
    cached.embed(["epsilon"])  # over max_items: the least recently used ("alpha beta") goes
    cached.embed(["alpha beta"])
    assert inner.batches[-1] == ["alpha beta"]
    assert cached.embed([]).shape == (0, cached.dimension)
