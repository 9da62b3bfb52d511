"""Which generator answers a question in a language: the bundled model whose grounded
adapter is for that language, when the configured one has none."""

import pytest

import ragtune.models.adapters as adapters
from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings, GeneratorSettings
from ragtune.errors import ConfigError
from ragtune.models.components import language_generator
from ragtune.testing import FakeGenerator

SMOL = "smollm2-135m-instruct"


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """An adapters folder with an English adapter for SmolLM2 and a Chinese one for gemma."""
    for name in ("smollm2-135m-instruct-grounded-en", "gemma-3-270m-grounded-zh"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
    (tmp_path / "broken-grounded-zh").mkdir()  # no adapter_config.json: not an adapter
    monkeypatch.setattr(adapters, "ADAPTERS", tmp_path)
    return tmp_path


def test_chinese_questions_go_to_the_model_with_a_chinese_adapter(bundled):
    chosen = language_generator(GeneratorSettings(model=SMOL), "zh")
    assert chosen is not None
    assert chosen.model == "gemma-3-270m"
    assert chosen.adapter == str(bundled / "gemma-3-270m-grounded-zh")
    assert adapters.grounded_models("zh") == ["gemma-3-270m"]


def test_the_default_model_answers_chinese_with_its_own_chinese_adapter(bundled):
    for backend in ("auto", "local", "llamacpp"):
        chosen = language_generator(GeneratorSettings(backend=backend), "zh")
        assert chosen is not None and chosen.model == "gemma-3-270m"
        assert chosen.adapter == str(bundled / "gemma-3-270m-grounded-zh")
        assert chosen.backend == backend


def test_the_configured_generator_answers_otherwise(bundled):
    assert language_generator(GeneratorSettings(model=SMOL), "en") is None
    assert language_generator(GeneratorSettings(model=SMOL), "fr") is None  # no French one
    for settings in (GeneratorSettings(model=SMOL, by_language="off"),
                     GeneratorSettings(model=SMOL, adapter="none"),
                     GeneratorSettings(model=SMOL, adapter=str(bundled)),
                     GeneratorSettings(model=SMOL, backend="openai"),
                     GeneratorSettings(model="/models/my-llama")):
        assert language_generator(settings, "zh") is None, settings


def test_a_model_with_its_own_adapter_for_the_language_keeps_it(bundled):
    (bundled / "smollm2-135m-instruct-grounded-zh").mkdir()
    (bundled / "smollm2-135m-instruct-grounded-zh" / "adapter_config.json").write_text("{}")
    chosen = language_generator(GeneratorSettings(model=SMOL), "zh")
    assert chosen is not None and chosen.model == "smollm2-135m-instruct"
    assert chosen.adapter == str(bundled / "smollm2-135m-instruct-grounded-zh")


def test_by_language_is_checked():
    with pytest.raises(ConfigError, match="generator.by_language must be auto or off"):
        GeneratorSettings(by_language="yes")


def test_a_generator_given_to_the_knowledge_base_answers_every_language(tmp_path, bundled):
    given = FakeGenerator()
    kb = KnowledgeBase.create(tmp_path / "kb", Settings(
        embedder=EmbedderSettings(backend="fake", model="fake-hash")), generator=given)
    assert kb.generator_for("苹果公司的营收是多少？") is given
    assert kb.generator_for("What is Apple's revenue?") is given


def test_the_knowledge_base_builds_the_language_generator_once(tmp_path, bundled, monkeypatch):
    import ragtune.knowledge_base as knowledge_base

    built = []

    def build(settings):
        built.append(settings.model)
        return FakeGenerator()

    monkeypatch.setattr(knowledge_base, "build_generator", build)
    kb = KnowledgeBase.create(tmp_path / "kb", Settings(
        embedder=EmbedderSettings(backend="fake", model="fake-hash"),
        generator=GeneratorSettings(model=SMOL)))
    english = kb.generator_for("What is Apple's revenue?")
    chinese = kb.generator_for("苹果公司的营收是多少？")
    assert chinese is not english
    assert kb.generator_for("那上个季度呢？") is chinese
    assert built == ["smollm2-135m-instruct", "gemma-3-270m"]
