"""Settings: dataclasses with the embedded defaults, read from ``ragtune.toml`` and ``RAGTUNE_*``.

Precedence, lowest first: the defaults below, a TOML file (``--config PATH``, else
``./ragtune.toml`` when present), environment variables ``RAGTUNE_<SECTION>_<FIELD>``
(for example ``RAGTUNE_GENERATOR_BASE_URL``), then explicit overrides (CLI flags).

Example ``ragtune.toml``::

    [generator]
    backend = "openai"
    base_url = "http://127.0.0.1:8001/v1"
    model = "Qwen2.5-7B-Instruct"

    [retrieval]
    k = 8
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from ragtune.errors import ConfigError


def _check(section: str, value: float, name: str, low: float | None = None,
           high: float | None = None, note: str = "") -> None:
    """A numeric setting within ``[low, high]``, else an error that gives the range."""
    if (low is None or value >= low) and (high is None or value <= high):
        return
    if high is None:
        bound = f"at least {low:g}"
    elif low is None:
        bound = f"at most {high:g}"
    else:
        bound = f"between {low:g} and {high:g}"
    raise ConfigError(f"{section}.{name} must be {bound}{note}, got {value:g}")


@dataclass(frozen=True)
class EmbedderSettings:
    backend: str = "sentence-transformers"
    model: str = "all-minilm-l6-v2"  # a bundled model name or a local model directory
    batch_size: int = 0  # full-length texts a forward pass; 0: 8 on CPU (fbgemm int8: 32)
    device: str = "cpu"
    languages: str = ""  # e.g. "en" or "en,zh"; empty: the bundled model's, else any
    precision: str = "auto"  # auto (int8 on CPUs with int8 kernels, else fp32) | int8 | fp32

    def __post_init__(self) -> None:
        _check("embedder", self.batch_size, "batch_size", 0, note=" (0: the default)")



@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = 200  # embedder tokens per chunk, context line not included
    overlap: int = 40  # tokens of trailing sentences repeated at the start of the next chunk

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(f"chunking.max_tokens (--chunk-tokens) must be at least 1, got "
                              f"{self.max_tokens}")
        if not 0 <= self.overlap < self.max_tokens:
            raise ConfigError(f"chunking.overlap (--overlap) must be 0 or more and below "
                              f"chunking.max_tokens ({self.max_tokens}), got {self.overlap}")


@dataclass(frozen=True)
class StoreSettings:
    backend: str = "lancedb"  # lancedb (embedded) | qdrant; fixed when a knowledge base is made
    url: str = ""  # qdrant server URL; empty: qdrant-client's local mode inside the folder
    collection: str = ""  # qdrant collection; empty: derived from the folder's name


@dataclass(frozen=True)
class IngestSettings:
    max_file_mb: float = 200.0  # larger files are skipped and reported
    batch_chunks: int = 256  # chunks embedded and committed together
    lock_timeout_s: float = 600.0  # how long a second writer waits for the first

    def __post_init__(self) -> None:
        _check("ingest", self.max_file_mb, "max_file_mb", 0.001)
        _check("ingest", self.batch_chunks, "batch_chunks", 1)
        _check("ingest", self.lock_timeout_s, "lock_timeout_s", 0)



@dataclass(frozen=True)
class RetrievalSettings:
    mode: str = "hybrid"  # hybrid | dense | lexical
    k: int = 3  # chunks in an answer's context: small local models do best with few
    candidates: int = 300  # depth of each retriever's list before fusion
    fusion: str = "zscore"  # zscore (standardised scores) | score (scaled by best) | rrf | minmax
    dense_weight: float = 0.75  # weight of the dense list in the fusion
    rrf_k: int = 60  # reciprocal-rank fusion constant (Cormack et al. 2009), fusion = "rrf"
    ann_min_rows: int = 20_000  # from this many chunks, dense search uses an HNSW graph
    reranker: str = ""  # a sentence-transformers CrossEncoder folder; empty: no reranking
    reranker_backend: str = "cross-encoder"  # the registered reranker that runs it
    rerank_depth: int = 30  # how many hits the reranker re-scores
    mmr_lambda: float = -1.0  # MMR trade-off in [0, 1] (1: relevance only); negative: off
    neighbours: int = 0  # chunks added before and after each hit in an answer's context
    # sentences of each chunk shown in an answer's context, those nearest the question
    # (ragtune.rag.compress); 0: whole chunks
    sentences: int = 0
    # an answer abstains without generating when no retrieved chunk, nor a sentence of one,
    # has this cosine similarity to the question and none holds every term of it; empty:
    # the embedder's own (ragtune.rag.relevance), -1: off
    min_similarity: float | None = None

    def __post_init__(self) -> None:
        _check("retrieval", self.k, "k", 1)
        _check("retrieval", self.candidates, "candidates", 1)
        _check("retrieval", self.dense_weight, "dense_weight", 0, 1)
        _check("retrieval", self.rrf_k, "rrf_k", 1)
        _check("retrieval", self.ann_min_rows, "ann_min_rows", 0)
        _check("retrieval", self.rerank_depth, "rerank_depth", 1)
        _check("retrieval", self.mmr_lambda, "mmr_lambda", high=1,
               note=" (a negative value turns MMR off)")
        _check("retrieval", self.neighbours, "neighbours", 0)
        _check("retrieval", self.sentences, "sentences", 0, note=" (0: whole chunks)")
        if self.min_similarity is not None:
            _check("retrieval", self.min_similarity, "min_similarity", -1, 1,
                   note=" (-1: off)")



@dataclass(frozen=True)
class GeneratorSettings:
    # auto (a bundled model's fastest engine, else local) | local | llamacpp | openai | a
    # plugin's name
    backend: str = "auto"
    model: str = "gemma-3-270m"  # bundled name, model folder, .gguf file, remote name
    # auto: the bundled grounded-answer adapter of the model (ragtune.models.adapters), if
    # it has one; none: the raw model; else a LoRA run folder or PEFT adapter folder
    adapter: str | None = "auto"
    base_url: str | None = None  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1
    api_key: str | None = None  # else OPENAI_API_KEY
    # output tokens allowed, and reserved in the context window: answers from sources are
    # short (a grounded answer is a phrase and its [n]); a longer task asks for more
    max_tokens: int = 96
    # local models: no n-gram of this many tokens is written twice in one answer (the
    # sources may still be quoted); 0 turns it off, for the raw model's own decoding
    no_repeat: int = 6
    # local models: generation stops before any of these ("|" between them)
    stop: str = "\nQuestion:|\n问题：|\nSources:|\n资料："
    temperature: float = 0.0
    context_window: int | None = None  # default: the model's own
    # cap on prompt + output tokens: small models degrade on long prompts
    max_context: int = 2048
    # local models: auto (exact fp32 decode loop, same tokens as transformers) | exact |
    # fp16 (fp16 weights, fp32 activations; near-ties can flip) | fast (int4 weights, bf16
    # steps; greedy output drifts) | transformers
    decoder: str = "auto"
    # greedy local decoding: check up to this many tokens copied from the prompt per pass
    # (prompt lookup; the output does not change); 0 turns it off
    prompt_lookup: int = 8
    # local models with a bundled grounded adapter: abstain when the model gives its
    # abstention this probability or more before answering (0 to 1); empty: the adapter's
    # own, chosen on a validation split (its calibration.json)
    abstain_threshold: float | None = None
    prompt: str = "full"  # full (system prompt asking for [n] citations) | compact
    # inline: every sentence a source supports ends with its [n] (added where the model
    # wrote none), unsupported sentences are listed | strict: and dropped | model: as written
    citations: str = "inline"
    source_order: str = "best-last"  # best-last (best source next to the question) | best-first
    # local, adapter auto: a question in a language whose bundled grounded adapter is for
    # another bundled model (Chinese: gemma-3-270m) is answered by that model with it | off
    by_language: str = "auto"
    timeout_s: float = 120.0
    # llamacpp: requests decoded together in one loaded model (llama.cpp's slots, each with
    # the whole max_context); ragtune serve answers that many chat requests at once
    parallel: int = 1
    # llamacpp: memory kept for prompts already read, so a prompt asked again (or one that
    # shares its start) is not read again; every prompt kept costs tens of MB (gemma-3-270m:
    # about 45 MB at 600 tokens), so the default is bounded; 0 turns it off (each slot still
    # keeps its last prompt)
    prompt_cache_mb: int = 256

    def __post_init__(self) -> None:
        _check("generator", self.max_tokens, "max_tokens", 1)
        _check("generator", self.prompt_cache_mb, "prompt_cache_mb", 0, note=" (0: off)")
        _check("generator", self.temperature, "temperature", 0, 2, note=" (0: greedy)")
        _check("generator", self.max_context, "max_context", 64)
        if self.context_window is not None:
            _check("generator", self.context_window, "context_window", 64)
        _check("generator", self.prompt_lookup, "prompt_lookup", 0, note=" (0: off)")
        _check("generator", self.parallel, "parallel", 1, 64)
        if self.abstain_threshold is not None:
            _check("generator", self.abstain_threshold, "abstain_threshold", 0, 1)
        _check("generator", self.no_repeat, "no_repeat", 0, note=" (0: off)")
        _check("generator", self.timeout_s, "timeout_s", 0.001)
        if self.citations not in ("inline", "strict", "model"):
            raise ConfigError(f"generator.citations must be inline, strict or model, got "
                              f"{self.citations!r}")
        if self.by_language not in ("auto", "off"):
            raise ConfigError(f"generator.by_language must be auto or off, got "
                              f"{self.by_language!r}")



@dataclass(frozen=True)
class Settings:
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["generator"].get("api_key"):
            data["generator"]["api_key"] = "***"
        return data


def _coerce(value: Any, typ: Any, where: str) -> Any:
    text = str(typ)
    try:
        if value is None or (isinstance(value, str) and value == "" and "None" in text):
            if "None" in text:
                return None
            raise ValueError("empty")
        if isinstance(value, (list, tuple, dict, set)):
            raise ValueError(f"a {type(value).__name__}, not a single value")
        if "int" in text and "float" not in text:
            if isinstance(value, bool):
                raise ValueError("a boolean")
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        if "float" in text:
            if isinstance(value, bool):
                raise ValueError("a boolean")
            return float(value)
        return str(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"setting {where}: cannot read {value!r} as {text} ({exc})") from None


def _apply(settings: Settings, data: Mapping[str, Any], origin: str) -> Settings:
    sections = {f.name: f for f in fields(Settings)}
    updates: dict[str, Any] = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(
                f"{origin}: unknown section [{name}]; valid sections: {', '.join(sections)}"
            )
        if not isinstance(values, Mapping):
            raise ConfigError(f"{origin}: [{name}] must be a table of settings")
        current = getattr(settings, name)
        hints = get_type_hints(type(current))
        valid = {f.name for f in fields(current)}
        changes = {}
        for key, value in values.items():
            if key not in valid:
                raise ConfigError(
                    f"{origin}: unknown setting {name}.{key}; valid: {', '.join(sorted(valid))}"
                )
            changes[key] = _coerce(value, hints[key], f"{name}.{key} in {origin}")
        try:
            updates[name] = replace(current, **changes)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    return replace(settings, **updates)


# RAGTUNE_* variables that are not settings (read where they are used)
OTHER_VARIABLES = frozenset({
    "RAGTUNE_API_KEYS", "RAGTUNE_CACHE_DIR", "RAGTUNE_DATA", "RAGTUNE_NATIVE_KERNELS",
    "RAGTUNE_SERVE_SETTINGS", "RAGTUNE_TRACEBACK",
})


def _from_env(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = {}
    defaults = Settings()
    names = {f.name: {g.name for g in fields(getattr(defaults, f.name))}
             for f in fields(Settings)}
    for key, value in env.items():
        if not key.startswith("RAGTUNE_") or key in OTHER_VARIABLES:
            continue
        rest = key[len("RAGTUNE_"):].lower()
        for section, keys in names.items():
            if rest.startswith(section + "_") and rest[len(section) + 1:] in keys:
                data.setdefault(section, {})[rest[len(section) + 1:]] = value
                break
        else:
            valid = [f"RAGTUNE_{s.upper()}_{k.upper()}" for s, ks in names.items()
                     for k in sorted(ks)]
            near = [v for v in valid if v.startswith(key[:len("RAGTUNE_") + 4])][:6]
            raise ConfigError(
                f"unknown environment variable {key}: settings are RAGTUNE_SECTION_NAME "
                f"(for example {', '.join(near or valid[:4])}); the others ragtune reads "
                f"are {', '.join(sorted(OTHER_VARIABLES))}. Unset it or fix its name")
    return data


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Resolve settings from defaults, a TOML file, ``RAGTUNE_*`` variables and overrides.

    ``overrides`` is ``{"section": {"field": value}}``; ``None`` values are ignored so that
    CLI options left unset do not hide the file or the environment.
    """
    settings = Settings()
    if path is None and Path("ragtune.toml").is_file():
        path = "ragtune.toml"
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {p} is not UTF-8 text (byte {exc.start}); save it "
                              "as UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
        settings = _apply(settings, data, str(p))
    settings = _apply(settings, _from_env(os.environ if env is None else env), "environment")
    if overrides:
        cleaned = {s: {k: v for k, v in vals.items() if v is not None}
                   for s, vals in overrides.items()}
        settings = _apply(settings, {s: v for s, v in cleaned.items() if v}, "options")
    return settings
