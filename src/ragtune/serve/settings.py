"""What a server needs to know: the knowledge base, keys, limits and CORS."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

from ragtune.errors import ConfigError
from ragtune.serve.keys import ApiKey, parse_keys

PIPELINES_BASE = ("rag", "closed")
PIPELINES_TUNED = ("serial", "parallel", "layered")


@dataclass(frozen=True)
class ServeSettings:
    """Settings of :func:`ragtune.serve.create_app`.

    Example::

        app = create_app(ServeSettings(kb=Path("my-kb"), api_keys=("s3cret",)))
    """

    kb: Path
    adapter: Path | None = None  # a LoRA run: adds serial, parallel and layered
    api_keys: tuple[str, ...] = ()  # KEY, KEY:SCOPE or KEY:SCOPE:COLLECTION; empty: no keys
    key_labels: tuple[str, ...] = ()  # where each entry came from, for errors (never the key)
    max_upload_mb: float = 20.0  # per uploaded file
    max_request_kb: int = 256  # JSON request bodies
    max_tokens_limit: int = 1024  # the largest max_tokens a request may ask for
    max_messages: int = 64
    max_k: int = 50
    max_question_chars: int = 4000  # longer questions are cut, with a note in the answer
    request_timeout_s: float = 120.0  # an answer still generating after this ends with 504
    max_pending: int = 32  # chat requests running or waiting; more get 503
    cors_origins: tuple[str, ...] = ()  # empty: CORS off
    uploads: str = "uploads"  # folder inside the knowledge base for uploaded files
    config: Path | None = None  # ragtune.toml for the knowledge base's models

    def __post_init__(self) -> None:
        parse_keys(self.api_keys, self.key_labels)  # a bad entry stops the server at start
        for name, low in (("max_pending", 1), ("max_question_chars", 100),
                          ("max_messages", 1), ("max_k", 1), ("max_tokens_limit", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"serve setting {name} must be at least {low}, got "
                                  f"{getattr(self, name)}")
        if self.request_timeout_s < 0:
            raise ConfigError("serve setting request_timeout_s must be 0 or more")

    def to_json(self) -> str:
        """For worker processes, which rebuild the settings with :meth:`from_json`."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data = json.loads(text)
        for key in ("kb", "adapter", "config"):
            data[key] = Path(data[key]) if data.get(key) else None
        for key in ("api_keys", "key_labels", "cors_origins"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)

    @cached_property
    def keys(self) -> tuple[ApiKey, ...]:
        """The parsed :attr:`api_keys` (see :mod:`ragtune.serve.keys`)."""
        return parse_keys(self.api_keys, self.key_labels)

    @property
    def pipelines(self) -> tuple[str, ...]:
        return PIPELINES_BASE + (PIPELINES_TUNED if self.adapter else ("layered",))
