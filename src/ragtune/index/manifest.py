"""``manifest.json``: what a knowledge base folder is and which embedder built it."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune._version import package_version
from ragtune.errors import EmbedderMismatchError, KnowledgeBaseError

# 2: the store may name its table (a re-embedded knowledge base); 1 otherwise, so that an
# older ragtune still opens every knowledge base it could open before
FORMAT_VERSION = 2
MANIFEST = "manifest.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary sibling, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Manifest:
    embedder_backend: str
    embedder_model: str
    dimension: int
    chunk_max_tokens: int
    chunk_overlap: int
    store: dict[str, Any] = field(default_factory=lambda: {"backend": "lancedb"})
    # how the stored vectors were computed (int8 or fp32); "" for an embedder without the
    # setting; knowledge bases from before the setting existed were built in fp32
    embedder_precision: str = ""
    # True when nobody chose the embedder (the default one): the first ingest may still
    # switch an empty knowledge base to the multilingual one for Chinese documents
    embedder_auto: bool = False
    format_version: int = FORMAT_VERSION
    created_at: float = field(default_factory=time.time)
    ragtune_version: str = field(default_factory=package_version)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "format_version": 2 if self.store.get("table") else 1,
            "ragtune_version": data["ragtune_version"],
            "created_at": data["created_at"],
            "embedder": {"backend": self.embedder_backend, "model": self.embedder_model,
                         "dimension": self.dimension,
                         **({"precision": self.embedder_precision}
                            if self.embedder_precision else {}),
                         **({"auto": True} if self.embedder_auto else {})},
            "chunking": {"max_tokens": self.chunk_max_tokens, "overlap": self.chunk_overlap},
            "store": self.store,
        }

    def save(self, folder: Path) -> None:
        write_json_atomic(folder / MANIFEST, self.to_dict())

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            version = int(data["format_version"])
            if version > FORMAT_VERSION:
                raise KnowledgeBaseError(
                    f"{path} has format_version {version}; this ragtune reads up to "
                    f"{FORMAT_VERSION}: upgrade ragtune"
                )
            return cls(
                embedder_backend=data["embedder"]["backend"],
                embedder_model=data["embedder"]["model"],
                dimension=int(data["embedder"]["dimension"]),
                chunk_max_tokens=int(data["chunking"]["max_tokens"]),
                chunk_overlap=int(data["chunking"]["overlap"]),
                store=dict(data.get("store") or {"backend": "lancedb"}),
                embedder_precision=str(data["embedder"].get("precision", "fp32")),
                embedder_auto=bool(data["embedder"].get("auto", False)),
                format_version=version,
                created_at=float(data.get("created_at", 0)),
                ragtune_version=str(data.get("ragtune_version", "")),
            )
        except FileNotFoundError:
            raise KnowledgeBaseError(
                f"no knowledge base at {folder} (no {MANIFEST}); create one with: "
                f"ragtune ingest PATH --kb {folder}"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise KnowledgeBaseError(f"{path} is corrupt ({exc!r})") from None

    def check_embedder(self, backend: str, model: str, folder: Path) -> None:
        if (backend, model) != (self.embedder_backend, self.embedder_model):
            raise EmbedderMismatchError(
                f"knowledge base {folder} was built with embedder {self.embedder_backend}:"
                f"{self.embedder_model} ({self.dimension}-d), not {backend}:{model}; mixing "
                f"embedders breaks search. Use the original embedder, or rebuild the vectors "
                f"with: ragtune kb reembed --kb {folder} --embedder {model}"
            )
