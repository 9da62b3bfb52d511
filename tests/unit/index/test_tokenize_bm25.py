import pytest

from ragtune.index.bm25 import BM25Index
from ragtune.index.tokenize import tokenize


def test_english_is_stemmed_without_stopwords():
    # the stopwords are Lucene's English set, as in the BEIR BM25 baseline
    assert tokenize("The Cats are RUNNING quickly") == ["cat", "run", "quick"]


def test_chinese_is_segmented_into_words():
    terms = tokenize("北京大学的学生在图书馆学习")
    assert "北京" in terms and "学生" in terms and "图书馆" in terms
    assert "的" not in terms


def test_mixed_text_keeps_both():
    terms = tokenize("iPhone 销量 grew 8%")
    assert {"iphon", "销量", "grew", "8"} <= set(terms)


def test_bm25_ranks_and_roundtrips(tmp_path):
    ids = ["a", "b", "c"]
    texts = ["the cat sat on the mat", "dogs bark at cats", "quarterly revenue grew"]
    index = BM25Index.build(ids, texts)
    hits = index.search("cat", k=3)
    assert [i for i, _ in hits][:2] == ["a", "b"] or [i for i, _ in hits][:2] == ["b", "a"]
    assert "c" not in [i for i, _ in hits]  # zero scores are not returned
    assert index.search("zebra", k=3) == []
    assert index.search("the", k=3) == []  # only stopwords
    index.save(tmp_path / "lex")
    loaded = BM25Index.load(tmp_path / "lex")
    assert loaded.search("revenue", k=1) == index.search("revenue", k=1)


def test_bm25_matches_the_formula():
    # k1=0.9, b=0.4; Lucene's BM25 (Kamphuis et al. 2020, ECIR): idf = ln(1 + (N - df + 0.5)
    # / (df + 0.5)), term weight tf / (tf + k1 * (1 - b + b * dl / avgdl))
    import math

    ids = ["a", "b"]
    index = BM25Index.build(ids, ["apple banana", "banana cherry cherry durian"])
    (doc, score), = [h for h in index.search("cherry", k=2)]
    n, df, tf, dl, avgdl, k1, b = 2, 1, 2, 4, 3.0, 0.9, 0.4
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expected = idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))
    assert doc == "b" and abs(score - expected) < 1e-5


def test_empty_index():
    assert BM25Index.build([], []).search("x") == []


def test_fast_scoring_matches_bm25s_retrieve():
    import random

    import numpy as np

    rng = random.Random(3)
    vocab = "apple banana cherry durian elder fig grape honeydew kiwi lemon mango".split()
    texts = [" ".join(rng.choices(vocab, k=rng.randint(3, 20))) for _ in range(200)]
    index = BM25Index.build([str(i) for i in range(200)], texts)
    for query in ("apple mango", "kiwi kiwi lemon", "fig", "banana cherry durian"):
        ours = index.search(query, k=20)
        docs, scores = index._retriever.retrieve([tokenize(query)], k=20, show_progress=False)
        theirs = [(str(int(d)), float(s))
                  for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-5)
        assert {i for i, _ in ours} == {i for i, _ in theirs} or len(ours) == 20
    mask = np.zeros(200, dtype=bool)
    mask[:10] = True
    assert all(int(i) < 10 for i, _ in index.search("apple", k=50, mask=mask))


def test_an_updated_index_equals_one_built_from_scratch(tmp_path):
    texts = {"a": "cats purr on the mat", "b": "dogs bark at cats", "c": "rivers run to the sea",
             "d": "北京的猫 and a dog", "e": "the sea is cold in winter"}
    asked: list[list[str]] = []

    def fetch(ids: list[str]) -> dict[str, str]:
        asked.append(ids)
        return {i: texts[i] for i in ids}

    old = BM25Index.build(["a", "b", "c"], [texts[i] for i in "abc"])
    old.save(tmp_path / "lex")
    new = BM25Index.load(tmp_path / "lex").updated(["b", "c", "d", "e"], fetch, store_version=7)
    fresh = BM25Index.build(["b", "c", "d", "e"], [texts[i] for i in "bcde"])
    assert asked == [["d", "e"]]  # only the added chunks are read (and tokenised)
    assert new.ids == ["b", "c", "d", "e"] and new.store_version == 7
    assert "purr" not in new.corpus.vocab  # a term only "a" had leaves the vocabulary
    for query in ("cats", "sea winter", "猫", "dog bark", "purr"):
        got, want = new.search(query, k=4), fresh.search(query, k=4)
        assert [i for i, _ in got] == [i for i, _ in want], query
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-6), query
