"""Hybrid weights by language: the knowledge base's languages and the question's."""

import pytest

from ragtune import KnowledgeBase
from ragtune.retrieve.languages import corpus_languages
from ragtune.retrieve.retrievers import CROSS_LINGUAL_WEIGHT, HybridRetriever
from ragtune.testing import FakeEmbedder


class MultilingualFake(FakeEmbedder):
    languages = None  # knows every language, as multilingual-e5-small


class EnglishFake(FakeEmbedder):
    languages = ("en",)  # as the default embedder


def test_the_languages_a_knowledge_base_is_written_in():
    assert corpus_languages([]) == ()
    assert corpus_languages(["Net sales rose.", "  "]) == ("en",)
    assert corpus_languages(["净销售额增长。"] * 3 + ["Net sales rose."]) == ("zh", "en")
    assert corpus_languages(["净销售额增长。"] + ["Net sales rose."] * 9) == ("en",)


@pytest.fixture
def english_kb(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(["Apple's net sales were 83 billion dollars in 2022.",
                              "The Eiffel Tower was completed in 1889.",
                              "Employees receive 25 days of paid vacation."]):
        (docs / f"{i}.txt").write_text(text)

    def build(embedder):
        kb = KnowledgeBase.create(tmp_path / f"kb-{type(embedder).__name__}", embedder=embedder)
        kb.ingest([docs])
        return kb
    return build


def test_a_question_in_another_language_leans_on_the_dense_list(english_kb):
    kb = english_kb(MultilingualFake())
    retriever = kb.retriever("hybrid")
    assert isinstance(retriever, HybridRetriever) and retriever.corpus_languages == ("en",)
    assert retriever.weight("How many vacation days?") == 0.75  # the configured weight
    assert retriever.weight("苹果公司2022年的净销售额是多少？") == CROSS_LINGUAL_WEIGHT == 0.9
    # the search runs with it: a Chinese question still gets hits, from both lists
    assert kb.search("苹果公司2022年的净销售额是多少？", k=3)


def test_an_embedder_that_does_not_know_the_language_gets_no_weight(english_kb):
    retriever = english_kb(EnglishFake()).retriever("hybrid")
    assert isinstance(retriever, HybridRetriever)
    assert retriever.weight("苹果公司的净销售额是多少？") == 0.0
    assert retriever.weight("What were Apple's net sales?") == 0.75


def test_no_boost_for_an_embedder_that_cannot_read_the_knowledge_base(tmp_path):
    docs = tmp_path / "zh"
    docs.mkdir()
    for i in range(3):
        (docs / f"{i}.txt").write_text(f"第{i}份报告：苹果公司的净销售额增长了百分之{i}。")
    kb = KnowledgeBase.create(tmp_path / "kb", embedder=EnglishFake())
    kb.ingest([docs])
    retriever = kb.retriever("hybrid")
    assert isinstance(retriever, HybridRetriever) and retriever.corpus_languages == ("zh",)
    # an English question over Chinese text: the English-only embedder cannot bridge them
    assert retriever.weight("What were Apple's net sales?") == 0.75


def test_a_mixed_knowledge_base_keeps_the_configured_weight(english_kb, tmp_path):
    kb = english_kb(MultilingualFake())
    extra = tmp_path / "zh"
    extra.mkdir()
    for i in range(3):
        (extra / f"{i}.txt").write_text(f"第{i}份报告：苹果公司的净销售额增长了百分之{i}。")
    kb.ingest([extra])
    retriever = kb.retriever("hybrid")
    assert isinstance(retriever, HybridRetriever)
    assert set(retriever.corpus_languages) == {"en", "zh"}
    assert retriever.weight("苹果公司的净销售额是多少？") == 0.75
