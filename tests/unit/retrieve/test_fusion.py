import pytest

from ragtune.retrieve.fusion import (
    min_max,
    reciprocal_rank_fusion,
    weighted_fusion,
    zscore_fusion,
)


def test_rrf_formula():
    fused = dict(reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)


def test_rrf_order_and_weights():
    assert [d for d, _ in reciprocal_rank_fusion([["a", "b"], ["b", "c"]])] == ["b", "a", "c"]
    weighted = reciprocal_rank_fusion([["a"], ["c"]], weights=[1.0, 2.0])
    assert weighted[0][0] == "c"
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1, 2])


def test_weighted_fusion_and_min_max():
    assert min_max([1, 3]) == [0.0, 1.0] and min_max([2, 2]) == [1.0, 1.0]
    fused = weighted_fusion([[("a", 0.9), ("b", 0.1)], [("b", 10.0), ("c", 5.0)]], [0.5, 0.5])
    assert fused[0] == ("a", 0.5) or fused[0][0] in ("a", "b")
    assert dict(fused)["b"] == pytest.approx(0.5)


def test_zscore_fusion_standardises_each_list():
    fused = dict(zscore_fusion(["a", "b"], [[0.9, 0.5], [1.0, 3.0]], [(0.5, 0.2), (1.0, 2.0)],
                               [0.75, 0.25]))
    assert fused["a"] == pytest.approx(0.75 * 2.0 + 0.25 * 0.0)
    assert fused["b"] == pytest.approx(0.75 * 0.0 + 0.25 * 1.0)
    # a list with no spread (no query term in the index) adds nothing
    assert dict(zscore_fusion(["a"], [[0.9], [0.0]], [(0.5, 0.2), (0.0, 0.0)], [0.5, 0.5])
                )["a"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2 scores for 1 candidates"):
        zscore_fusion(["a"], [[1.0, 2.0]], [(0.0, 1.0)], [1.0])
    with pytest.raises(ValueError, match="moments"):
        zscore_fusion(["a"], [[1.0]], [], [1.0])
