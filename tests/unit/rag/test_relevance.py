"""An answer abstains without generating when no retrieved chunk is close enough to the
question, at the embedder's own threshold or the setting's."""

from ragtune.rag.answer import answer_from_hits
from ragtune.rag.relevance import best_similarity, default_min_similarity, min_similarity
from ragtune.testing import FakeGenerator
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
    answer = answer_from_hits("How many vacation days?", far, generator, min_similarity=0.4)
    assert answer.abstained and answer.text == "The sources do not say."
    assert generator.calls == 0 and not answer.citations
    assert answer.similarity == 0.21 and "0.21" in answer.notes[0] and "0.40" in answer.notes[0]
    assert answer.to_dict()["similarity"] == 0.21
    zh = answer_from_hits("每年有多少天假期？", far, generator, min_similarity=0.4)
    assert zh.abstained and zh.text == "资料中没有提到。"


def test_at_or_above_it_or_without_dense_scores_the_model_answers() -> None:
    generator = CountingGenerator()
    near = [Hit(CHUNK, 0.1, dense_score=0.1), Hit(CHUNK, 0.05, dense_score=0.4)]
    answer = answer_from_hits("How many vacation days?", near, generator, min_similarity=0.4)
    assert not answer.abstained and generator.calls == 1 and answer.similarity == 0.4
    lexical = [Hit(CHUNK, 5.0, lexical_score=5.0)]
    answer_from_hits("How many vacation days?", lexical, generator, min_similarity=0.4)
    assert generator.calls == 2  # BM25 scores are not similarities: nothing to compare


def test_the_threshold_is_the_setting_else_the_embedders_own() -> None:
    measured = default_min_similarity("all-minilm-l6-v2")
    assert measured is not None and 0 < measured < 1  # min_similarity.json
    assert min_similarity(None, "all-MiniLM-L6-v2") == measured
    assert min_similarity(None, "some-other-embedder") is None
    assert min_similarity(0.55, "all-minilm-l6-v2") == 0.55
    assert min_similarity(-1, "all-minilm-l6-v2") is None
    assert best_similarity([]) is None
