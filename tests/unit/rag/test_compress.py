import numpy as np
import pytest

from ragtune.config import RetrievalSettings
from ragtune.errors import ConfigError
from ragtune.rag.compress import GAP, select_sentences
from ragtune.types import Chunk, Hit


class WordEmbedder:
    """One dimension per word of the question: a sentence scores by the words it shares."""

    name, dimension = "words", 3
    WORDS = ("volcano", "ash", "lava")

    def embed(self, texts):
        return np.array([[float(w in t.lower()) for w in self.WORDS] for t in texts])


def hit(text: str, kind: str = "text") -> Hit:
    return Hit(Chunk(id=text[:8], source="a.txt", text=text, start=0, end=len(text),
                     kind=kind), 1.0)


TEXT = ("The sky is blue. Volcanoes throw ash. Grass is green. The volcano made lava. "
        "Cows eat grass.")


def test_the_sentences_nearest_the_question_are_kept_in_their_order():
    (out,) = select_sentences("volcano ash lava", [hit(TEXT)], 2, WordEmbedder())
    assert out.chunk.text == f"Volcanoes throw ash.{GAP}The volcano made lava."
    assert out.chunk.id == hit(TEXT).chunk.id  # still cites the same chunk


def test_neighbouring_sentences_are_joined_without_a_gap():
    text = "Grass is green. Volcanoes throw ash. The volcano made lava. Cows eat grass."
    (out,) = select_sentences("volcano ash lava", [hit(text)], 2, WordEmbedder())
    assert out.chunk.text == "Volcanoes throw ash. The volcano made lava."


def test_tables_and_short_chunks_stay_whole():
    table, short = hit("| a | b |\n| 1 | 2 |", kind="table"), hit("Volcanoes throw ash.")
    out = select_sentences("volcano", [table, short, hit(TEXT)], 2, WordEmbedder())
    assert out[0] == table and out[1] == short and out[2].chunk.text != TEXT
    assert select_sentences("volcano", [hit(TEXT)], 0, WordEmbedder())[0].chunk.text == TEXT


def test_the_setting_is_checked():
    with pytest.raises(ConfigError, match="retrieval.sentences must be at least 0"):
        RetrievalSettings(sentences=-1)


def test_the_prompt_shows_only_the_kept_sentences():
    from ragtune.rag.answer import answer_from_hits
    from ragtune.testing import FakeGenerator

    seen = []

    class Recording(FakeGenerator):
        def generate(self, messages, *, max_tokens, temperature=0.0):
            seen.append(messages[-1]["content"])
            return super().generate(messages, max_tokens=max_tokens, temperature=temperature)

    answer = answer_from_hits("volcano ash lava", [hit(TEXT)], Recording(),
                              embedder=WordEmbedder(), sentences=2)
    assert "The volcano made lava." in seen[0] and "Cows eat grass" not in seen[0]
    assert answer.context[0].text == f"Volcanoes throw ash.{GAP}The volcano made lava."
