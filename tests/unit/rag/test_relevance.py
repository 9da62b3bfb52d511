"""An answer abstains without generating when no retrieved chunk, nor one of its
sentences, is close enough to the question, at the embedder's own threshold or the
setting's, unless one chunk holds every term of the question."""

from ragtune.rag.answer import answer_from_hits
from ragtune.rag.relevance import (
    best_similarity,
    covering_source,
    default_min_similarity,
    min_similarity,
    relevance,
)
from ragtune.testing import FakeEmbedder, FakeGenerator
from ragtune.types import Chunk, Hit

CHUNK = Chunk(id="v", source="handbook.md", start=0, end=10,
              text="Every employee receives 25 days of paid vacation per year.")


class CountingGenerator(FakeGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def generate(self, messages, *, max_tokens, temperature=0.0):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().generate(messages, max_tokens=max_tokens, temperature=temperature)


def test_below_the_threshold_the_answer_abstains_without_generating() -> None:
    generator = CountingGenerator()
    far = [Hit(CHUNK, 1.2, dense_score=0.21, lexical_score=3.0)]
    answer = answer_from_hits("How many sick days?", far, generator, min_similarity=0.4)
    assert answer.abstained and answer.text == "The sources do not say."
    assert generator.calls == 0 and not answer.citations
    assert answer.similarity == 0.21 and "similarity 0.21" in answer.notes[0]
    assert "min_similarity 0.4," in answer.notes[0]
    assert answer.to_dict()["similarity"] == 0.21
    zh = answer_from_hits("每年有多少天病假？", far, generator, min_similarity=0.4)
    assert zh.abstained and zh.text == "资料中没有提到。"


def test_at_or_above_it_or_without_dense_scores_the_model_answers() -> None:
    generator = CountingGenerator()
    near = [Hit(CHUNK, 0.1, dense_score=0.1), Hit(CHUNK, 0.05, dense_score=0.4)]
    answer = answer_from_hits("How many sick days?", near, generator, min_similarity=0.4)
    assert not answer.abstained and generator.calls == 1 and answer.similarity == 0.4
    lexical = [Hit(CHUNK, 5.0, lexical_score=5.0)]
    answer_from_hits("How many sick days?", lexical, generator, min_similarity=0.4)
    assert generator.calls == 2  # BM25 scores are not similarities: nothing to compare


def test_the_threshold_is_the_setting_else_the_embedders_own() -> None:
    measured = default_min_similarity("all-minilm-l6-v2")
    assert measured is not None and 0 < measured < 1  # min_similarity.json
    assert min_similarity(None, "all-MiniLM-L6-v2") == measured
    assert min_similarity(None, "some-other-embedder") is None
    assert min_similarity(0.55, "all-minilm-l6-v2") == 0.55
    assert min_similarity(-1, "all-minilm-l6-v2") is None
    assert best_similarity([]) is None


LONG = Chunk(id="s", source="serve.md", start=0, end=10, text=(
    "The models load once, at startup, and one worker process serves requests on a thread "
    "pool with a bounded queue. Keys are read from a file, one entry a line, and uploads "
    "go to a folder per key. To start the server, run ragtune serve. Throughput grows "
    "with more worker processes, each with its own copy of the models."))


def test_a_sentence_close_to_the_question_is_enough_in_a_chunk_far_from_it() -> None:
    embedder = FakeEmbedder(dimension=512)
    hits = [Hit(LONG, 0.5, dense_score=0.2)]
    question = "How do I start the server quickly?"  # "quickly": not every term is there
    measured = relevance(question, hits, embedder)
    assert measured.covered is None and measured.similarity is not None
    # the sentence that says how (0.43 with this embedder), not the whole chunk (0.22)
    assert measured.similarity > 0.4
    generator = CountingGenerator()
    answer = answer_from_hits(question, hits, generator, min_similarity=0.4, embedder=embedder)
    assert not answer.abstained and generator.calls == 1
    # without an embedder only the chunk's score is known: below the threshold
    assert answer_from_hits(question, hits, generator, min_similarity=0.4).abstained
    # a chunk that reaches the threshold is enough: no sentence is embedded
    before = embedder.texts_embedded
    assert relevance(question, [Hit(LONG, 0.5, dense_score=0.6)], embedder, 0.4).passes(0.4)
    assert embedder.texts_embedded == before


def test_a_chunk_holding_every_term_of_the_question_is_on_topic() -> None:
    raft = Chunk(id="r", source="combining.md", start=0, end=10,
                 text="RAFT trains the model on each question with its oracle document.")
    hits = [Hit(CHUNK, 1.0, dense_score=0.1), Hit(raft, 0.9, dense_score=0.15)]
    assert covering_source("What is RAFT?", hits) == 2  # question words aside
    assert covering_source("What is RAFT's oracle?", hits) == 2  # stemmed, like BM25
    assert covering_source("What is RAFT in Chinese?", hits) is None
    assert covering_source("What is it?", hits) is None  # nothing left to look for
    generator = CountingGenerator()
    answer = answer_from_hits("What is RAFT?", hits, generator, min_similarity=0.4)
    assert not answer.abstained and generator.calls == 1 and answer.similarity == 0.15
    assert answer_from_hits("What is RAFT in Chinese?", hits, generator,
                            min_similarity=0.4).abstained
    zh = [Hit(Chunk(id="z", source="zh.md", start=0, end=10,
                    text="员工每年有二十五天带薪年假。"), 1.0, dense_score=0.1)]
    assert covering_source("每年有几天带薪年假？", zh) == 1  # 几天: a question word
    assert covering_source("每年有几天带薪病假？", zh) is None


def test_without_a_threshold_nothing_but_the_chunks_scores_is_measured() -> None:
    embedder = FakeEmbedder(dimension=512)
    answer = answer_from_hits("How do I start the server quickly?",
                              [Hit(LONG, 0.5, dense_score=0.2)], CountingGenerator(),
                              embedder=embedder)
    assert answer.similarity == 0.2  # the chunk's: no sentence was embedded for the gate
    assert not answer.abstained


def test_a_tables_header_counts_for_the_terms_of_the_question() -> None:
    table = Chunk(id="t", source="prices.pdf", start=0, end=10, kind="table",
                  context="Plans and prices\n| plan | monthly price |\n|---|---|",
                  text="| Pro | 12 USD |")
    hits = [Hit(table, 1.0, dense_score=0.1)]
    assert covering_source("What is the Pro plan's monthly price?", hits) == 1
    assert covering_source("What is the Pro plan's yearly price?", hits) is None
