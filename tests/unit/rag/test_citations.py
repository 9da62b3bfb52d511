from ragtune.rag.citations import analyse, cite, lexical_support
from ragtune.testing import FakeEmbedder
from ragtune.types import Chunk, Hit

VACATION = Chunk(id="v", source="handbook.pdf", page=12, start=0, end=10,
                 text="Every employee receives 25 days of paid vacation per year. Unused days "
                      "can be carried over until March 31.")
TOWER = Chunk(id="t", source="paris.md", start=0, end=10,
              text="The Eiffel Tower was completed in 1889. It is 330 metres tall.")
HITS = [Hit(VACATION, 0.9), Hit(TOWER, 0.5)]


def test_lexical_support_counts_words_and_word_order():
    assert lexical_support("Employees receive 25 days of paid vacation.", VACATION.text) > 0.6
    assert lexical_support("The tower is in Rome.", VACATION.text) == 0.0
    forward = lexical_support("paid vacation per year", VACATION.text)
    shuffled = lexical_support("year per vacation paid", VACATION.text)
    assert forward == 1.0 and shuffled < forward


def test_marked_citations_are_checked():
    answer = "Employees receive 25 days of paid vacation [1]. The tower was finished in 1889 [1]."
    citations = cite(answer, HITS)
    assert len(citations) == 1 and citations[0].n == 1 and citations[0].marked
    # the second sentence cites [1] but [1] says nothing about the tower
    assert citations[0].supported is False
    assert citations[0].sentences == (0, 1)


def test_unmarked_sentences_are_attributed_to_best_source():
    answer = "The Eiffel Tower was completed in 1889. Employees get 25 days of paid vacation."
    citations = {c.n: c for c in cite(answer, HITS, FakeEmbedder())}
    assert set(citations) == {1, 2}
    assert citations[2].sentences == (0,) and citations[2].supported
    assert citations[1].sentences == (1,) and not citations[1].marked


def test_chinese_markers_and_unsupported_sentence():
    analysis = analyse("员工有25天带薪年假【1】。", [h.chunk for h in HITS])
    assert analysis[0].cited == (1,) and analysis[0].marked
    # a sentence unrelated to every source is left unattributed
    assert cite("Bananas are yellow fruit.", HITS) == []


def test_out_of_range_marker_is_ignored():
    analysis = analyse("Something [7].", [h.chunk for h in HITS])
    assert analysis[0].marked is False and analysis[0].cited == ()


def test_marker_after_the_full_stop_belongs_to_the_sentence():
    citations = cite("Every employee receives 25 days of paid vacation per year. [1]", HITS)
    assert len(citations) == 1 and citations[0].marked and citations[0].supported
    assert citations[0].sentences == (0,)
