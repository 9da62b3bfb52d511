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


def test_token_batches_bound_padded_tokens_and_texts():
    from ragtune.models.embedders import token_batches

    lengths = [256, 256, 256, 200, 120, 64, 64, 64, 10, 10, 3]
    batches = token_batches(lengths, budget=512, most=4)
    assert [lengths[b] for b in batches] == [[256, 256], [256, 200], [120, 64, 64, 64],
                                             [10, 10, 3]]
    assert token_batches([], 512, 4) == []
    assert token_batches([900], 512, 4) == [slice(0, 1)]  # longer than the budget: alone


def test_bulk_tokenizing_only_overrides_ragtunes_own_default(monkeypatch):
    import os

    from ragtune.models import offline

    monkeypatch.setattr(offline, "_parallelism_ours", True)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    with offline.bulk_tokenizing():
        assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    monkeypatch.setattr(offline, "_parallelism_ours", False)  # the user's own "false"
    with offline.bulk_tokenizing():
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
