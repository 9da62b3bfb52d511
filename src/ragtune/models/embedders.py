"""Embedders: any sentence-transformers model from a local folder; the bundled MiniLM by name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.config import EmbedderSettings
from ragtune.errors import ConfigError
from ragtune.models.offline import bulk_tokenizing, ensure_offline
from ragtune.models.registry import BUNDLED, bundled_model, require_files

logger = logging.getLogger(__name__)
PRECISIONS = ("auto", "int8", "fp32")
CPU_SMALL_BATCH = 8  # texts per pass on CPU (fp32, native int8) when the setting is 0 (auto)
TOKENIZE_GROUP = 512  # texts tokenized in one call (on every core) before their passes


def int8_supported() -> bool:
    """Whether torch has int8 kernels for this CPU (fbgemm, for AVX2 and AVX-512 VNNI)."""
    import torch

    return bool({"x86", "fbgemm"} & set(torch.backends.quantized.supported_engines))


def resolve_embedder_dir(model: str) -> Path:
    """The folder of a bundled embedder name or of a local sentence-transformers model."""
    names = [m.name for m in BUNDLED if m.role == "embedder"
             and m.backend == "sentence-transformers"]
    if model.lower() in names:
        return require_files(bundled_model(model))[0]
    other = [m for m in BUNDLED if m.role == "embedder" and m.name == model.lower()]
    if other:
        raise ConfigError(f"embedder {model!r} runs on the {other[0].backend} backend, not "
                          f"sentence-transformers: set embedder.backend = "
                          f"\"{other[0].backend}\" (or leave it at its default)")
    path = Path(model).expanduser()
    if path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists()):
        return path
    raise ConfigError(
        f"embedder model {model!r} is neither a bundled model ({', '.join(names)}) "
        "nor a local sentence-transformers model folder"
    )


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model, L2-normalised, float32.

    ``precision``: ``"int8"`` runs the model's linear layers on int8 kernels (see
    :mod:`ragtune.models.int8_linear`): ragtune's native kernel on CPUs with AVX-512 VNNI
    (activations scaled per token), else torch's dynamic int8 layers (scaled per batch, so
    a vector depends slightly on its batch). ``"fp32"`` is exact and deterministic.
    ``"auto"`` (default) is int8 on a CPU with int8 kernels and fp32 elsewhere.

    Example:
        >>> emb = SentenceTransformerEmbedder("all-minilm-l6-v2")  # doctest: +SKIP
        >>> emb.embed(["hello"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model: str = "all-minilm-l6-v2", *, batch_size: int = 0,
                 device: str = "cpu", languages: tuple[str, ...] | None = None,
                 precision: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown embedder precision {precision!r}; valid choices: "
                              f"{', '.join(PRECISIONS)}")
        if precision == "int8" and (device != "cpu" or not int8_supported()):
            raise ConfigError("embedder precision int8 needs device cpu and a CPU with int8 "
                              "kernels (AVX2); set embedder.precision to fp32 or auto")
        ensure_offline()
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.path = resolve_embedder_dir(model)
        # the languages it embeds well (None: not known to be limited); hybrid search gives
        # the dense list no weight for queries in other languages
        bundled = [m for m in BUNDLED if m.name == model.lower()]
        self.languages = languages or (bundled[0].languages if bundled else None)
        if batch_size < 0:
            raise ConfigError(f"embedder batch_size must be 0 (automatic) or more, got "
                              f"{batch_size}")
        self._model: Any = SentenceTransformer(str(self.path), device=device,
                                               local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dimension = int(get_dim() or 0)
        self.max_tokens = int(self._model.max_seq_length or 512)
        if precision == "auto":
            precision = "int8" if device == "cpu" and int8_supported() else "fp32"
        self.precision = precision
        # int8: ragtune's native kernel (one activation scale per token) on CPUs with
        # AVX-512 VNNI, torch's dynamic int8 layers (one scale per batch) elsewhere
        self.int8_kernel: str | None = None
        if precision == "int8":
            from ragtune.models.int8_linear import quantize_linear_layers

            self.int8_kernel = quantize_linear_layers(self._model)
            if self.int8_kernel == "native":  # and the native attention for padded texts
                from ragtune.models.encoder_attention import use_native_attention

                use_native_attention(self._model, bf16=True)
        # On CPU small batches keep a layer's activations in cache: fp32 at 8 texts a pass
        # embedded about 1.25x faster than at 32, the native int8 kernel 1.2x. torch's
        # int8 layers scale activations per batch, which at 8 a pass cost 0.007 hybrid
        # nDCG@10 on SciFact train against 0.001 at 32 (BENCHMARKS.md): they keep 32.
        small = device == "cpu" and (precision == "fp32" or self.int8_kernel == "native")
        self.batch_size = batch_size or (CPU_SMALL_BATCH if small else 32)
        logger.info("embedder %s in %s%s", model, precision,
                    f" ({self.int8_kernel} kernel)" if self.int8_kernel else "")
        # one forward pass at a time: torch already spreads one over the cores, and passes
        # from many server threads at once only multiply the activation memory
        self._lock = threading.Lock()
        self._presorted = _plain_text_model(self._model)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> SentenceTransformerEmbedder:
        languages = tuple(x.strip() for x in settings.languages.split(",") if x.strip())
        return cls(settings.model, batch_size=settings.batch_size, device=settings.device,
                   languages=languages or None, precision=settings.precision)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            if self._presorted:
                return self._embed_presorted(list(texts))
            return self._encode(list(texts))

    def _encode(self, texts: list[str]) -> np.ndarray:
        """sentence-transformers' own batching (models ``_embed_presorted`` does not cover)."""
        vectors = self._model.encode(texts, batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def _embed_presorted(self, texts: list[str]) -> np.ndarray:
        """``encode``'s vectors with the tokenizing and batching done once per group.

        sentence-transformers tokenizes each pass on its own (one core, a call per 8
        texts) and sorts texts by characters; here a group of up to 512 texts (longest
        first by characters, as there) is tokenized in one call on every core, sorted by
        tokens, and cut into passes of at most ``batch_size`` full-length texts' tokens
        (so up to 4x as many short ones), each pass's columns trimmed to its longest text.
        """
        import torch

        model = self._model
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        budget = self.batch_size * self.max_tokens
        with torch.inference_mode():
            for start in range(0, len(order), TOKENIZE_GROUP):
                group = np.asarray(order[start:start + TOKENIZE_GROUP])
                with bulk_tokenizing():
                    features = model.preprocess([texts[i] for i in group])
                if "attention_mask" not in features:  # a model with unpadded inputs
                    out[group] = self._encode([texts[i] for i in group])
                    continue
                lengths = features["attention_mask"].sum(dim=1).numpy()
                rows = np.argsort(-lengths, kind="stable")
                for batch in token_batches(lengths[rows].tolist(), budget,
                                           4 * self.batch_size):
                    picked = torch.from_numpy(rows[batch])
                    width = int(lengths[rows[batch.start]])
                    sliced = {key: value[picked, :width].to(model.device)
                              if _per_token(value, len(group)) else value
                              for key, value in features.items()}
                    vectors = model.forward(sliced)["sentence_embedding"].float()
                    vectors = torch.nn.functional.normalize(vectors, dim=1)
                    out[group[rows[batch]]] = vectors.cpu().numpy()
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        # verbose=False: counting a long text is not running it through the model
        encoded = self._model.tokenizer(list(texts), add_special_tokens=False,
                                        return_attention_mask=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]


def token_batches(lengths: list[int], budget: int, most: int) -> list[slice]:
    """Consecutive passes over texts sorted longest first: each pass at most ``budget``
    padded tokens (its first text's length times its count) and ``most`` texts."""
    batches, start = [], 0
    while start < len(lengths):
        count = max(1, min(most, budget // max(1, lengths[start]), len(lengths) - start))
        batches.append(slice(start, start + count))
        start += count
    return batches


def _per_token(value: Any, rows: int) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and value.dim() == 2 and value.size(0) == rows


def _plain_text_model(model: Any) -> bool:
    """Whether ``_embed_presorted`` reproduces ``model.encode``: a text Transformer module
    with a right-padding tokenizer and ``preprocess`` (older sentence-transformers
    releases go through ``encode``), no default prompt and no output truncation."""
    try:
        first = model[0]
    except (TypeError, IndexError, KeyError):
        return False
    tokenizer = getattr(first, "tokenizer", None)
    return (type(first).__name__ == "Transformer" and hasattr(model, "preprocess")
            and getattr(tokenizer, "padding_side", None) == "right"
            and not getattr(model, "default_prompt_name", None)
            and not getattr(model, "truncate_dim", None))


class CachedEmbedder:
    """An embedder that remembers the vectors of the last ``max_items`` texts.

    The citation check embeds every sentence of every retrieved chunk for each answer; in a
    server the same chunks come back again and again, so their vectors are kept. Thread-safe:
    misses are embedded in one batch outside the lock, and the model itself is used by one
    is left to the inner embedder.

    Example::

        cached = CachedEmbedder(kb.embedder, max_items=20_000)
        cached.embed(["a sentence"])  # computed
        cached.embed(["a sentence"])  # from the cache
    """

    def __init__(self, inner: Any, max_items: int = 20_000) -> None:
        from collections import OrderedDict

        self.inner = inner
        self.name, self.dimension = inner.name, inner.dimension
        self.max_items = max_items
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)  # type: ignore[no-any-return]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Questions go to the inner embedder uncached (each is asked once)."""
        from ragtune.models.protocol import embed_queries

        return embed_queries(self.inner, texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
            for t in found:
                self._vectors.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = self.inner.embed(missing)
            with self._lock:
                for t, v in zip(missing, vectors, strict=True):
                    self._vectors[t] = v
                    found[t] = v
                while len(self._vectors) > self.max_items:
                    self._vectors.popitem(last=False)
        with self._lock:
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)
