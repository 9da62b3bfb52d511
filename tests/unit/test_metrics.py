import math

import numpy as np
import pytest

from ragtune.evaluate.metrics import mrr_at_k, ndcg_at_k, recall_at_k


def test_ndcg_matches_an_independent_implementation():
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    for _ in range(50):
        n = 30
        grades = rng.integers(0, 3, size=n)
        scores = rng.random(n)
        ids = [f"d{i}" for i in range(n)]
        ranked = [ids[i] for i in np.argsort(-scores)]
        relevance = {ids[i]: int(g) for i, g in enumerate(grades)}
        if grades.sum() == 0:
            continue
        expected = ndcg_score([grades], [scores], k=10)
        assert ndcg_at_k(ranked, relevance, 10) == pytest.approx(expected, abs=1e-9)


def test_small_cases_by_hand():
    rel = {"a": 1, "b": 1}
    assert ndcg_at_k(["a", "b"], rel) == 1.0
    assert ndcg_at_k(["x", "a"], {"a": 1}) == pytest.approx(1 / math.log2(3))
    assert recall_at_k(["a", "x"], rel, k=2) == 0.5
    assert mrr_at_k(["x", "y", "b"], rel) == pytest.approx(1 / 3)
    assert ndcg_at_k(["a"], {}) == 0.0
