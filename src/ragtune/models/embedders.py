"""Embedders: any sentence-transformers model from a local folder; the bundled MiniLM by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.config import EmbedderSettings
from ragtune.errors import ConfigError
from ragtune.models.offline import ensure_offline
from ragtune.models.registry import BUNDLED, bundled_model, require_files


def resolve_embedder_dir(model: str) -> Path:
    """The folder of a bundled embedder name or of a local sentence-transformers model."""
    names = [m.name for m in BUNDLED if m.role == "embedder"]
    if model.lower() in names:
        return require_files(bundled_model(model))[0]
    path = Path(model).expanduser()
    if path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists()):
        return path
    raise ConfigError(
        f"embedder model {model!r} is neither a bundled model ({', '.join(names)}) "
        "nor a local sentence-transformers model folder"
    )


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model, L2-normalised, float32.

    Example:
        >>> emb = SentenceTransformerEmbedder("all-minilm-l6-v2")  # doctest: +SKIP
        >>> emb.embed(["hello"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model: str = "all-minilm-l6-v2", *, batch_size: int = 32,
                 device: str = "cpu", languages: tuple[str, ...] | None = None) -> None:
        ensure_offline()
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.path = resolve_embedder_dir(model)
        # the languages it embeds well (None: not known to be limited); hybrid search gives
        # the dense list no weight for queries in other languages
        bundled = [m for m in BUNDLED if m.name == model.lower()]
        self.languages = languages or (bundled[0].languages if bundled else None)
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(str(self.path), device=device,
                                               local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dimension = int(get_dim() or 0)
        self.max_tokens = int(self._model.max_seq_length or 512)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> SentenceTransformerEmbedder:
        languages = tuple(x.strip() for x in settings.languages.split(",") if x.strip())
        return cls(settings.model, batch_size=settings.batch_size, device=settings.device,
                   languages=languages or None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        # verbose=False: counting a long text is not running it through the model
        encoded = self._model.tokenizer(list(texts), add_special_tokens=False,
                                        return_attention_mask=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]
