"""ragtune: RAG, LoRA fine-tuning and their combinations, measured on your own data.

Example:
    >>> import ragtune
    >>> kb = ragtune.KnowledgeBase.create("my-kb")  # doctest: +SKIP
    >>> kb.ingest(["docs/"])  # doctest: +SKIP
    >>> print(kb.ask("How do I install ragtune?").text)  # doctest: +SKIP
"""

from ragtune._version import package_version
from ragtune.config import (
    ChunkSettings,
    EmbedderSettings,
    GeneratorSettings,
    RetrievalSettings,
    Settings,
    load_settings,
)
from ragtune.errors import (
    ConfigError,
    DocumentError,
    EmbedderMismatchError,
    GenerationError,
    KnowledgeBaseError,
    ModelNotInstalledError,
    RagtuneError,
    UnknownComponentError,
)
from ragtune.index.ingest import IngestReport
from ragtune.knowledge_base import KnowledgeBase
from ragtune.models.components import build_embedder, build_generator
from ragtune.models.protocol import Embedder, Generator
from ragtune.types import Answer, Chunk, Citation, Completion, Document, Hit, Message, Section

__version__ = package_version()

__all__ = [
    "Answer",
    "ChunkSettings",
    "Chunk",
    "Citation",
    "Completion",
    "ConfigError",
    "Document",
    "DocumentError",
    "Embedder",
    "EmbedderMismatchError",
    "EmbedderSettings",
    "GenerationError",
    "Generator",
    "GeneratorSettings",
    "Hit",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Message",
    "ModelNotInstalledError",
    "RagtuneError",
    "RetrievalSettings",
    "Section",
    "Settings",
    "UnknownComponentError",
    "__version__",
    "build_embedder",
    "build_generator",
    "load_settings",
]
