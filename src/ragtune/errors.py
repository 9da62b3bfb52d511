"""Exceptions raised by ragtune.

Every message says what was received, what was expected and what to do.

    RagtuneError
     ├── ConfigError              a setting, flag or request field is invalid
     │    └── UnknownComponentError   a registry name that does not exist (lists the valid ones)
     ├── ModelNotInstalledError   a bundled model's package is missing (names the install command)
     ├── DocumentError            a file could not be read or parsed (names the file)
     ├── DataError                fine-tuning data is invalid (names file, line and field)
     ├── KnowledgeBaseError       a knowledge base is missing, corrupt or incompatible
     │    └── EmbedderMismatchError   the embedder differs from the one in the manifest
     └── GenerationError          a generator failed (local model or remote endpoint)
"""

from __future__ import annotations

from collections.abc import Iterable


class RagtuneError(Exception):
    """Base class of every error ragtune raises on purpose."""


class ConfigError(RagtuneError, ValueError):
    """A setting, command-line flag or request field is invalid."""


class UnknownComponentError(ConfigError, KeyError):
    """A component name that is not in its registry."""

    def __init__(self, role: str, name: str, choices: Iterable[str]) -> None:
        self.role = role
        self.name = name
        self.choices = sorted(choices)
        super().__init__(
            f"unknown {role} {name!r}; valid choices: "
            f"{', '.join(self.choices) or '(none installed)'}"
        )

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class ModelNotInstalledError(RagtuneError):
    """A bundled model is not installed; the message names the install command."""

    def __init__(self, name: str, install_command: str) -> None:
        self.name = name
        self.install_command = install_command
        super().__init__(
            f"model {name!r} is not installed; install it with:\n    {install_command}\n"
            f"or: ragtune models install {name}"
        )


class DocumentError(RagtuneError):
    """A document could not be read; carries the path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DataError(RagtuneError):
    """Fine-tuning data is invalid or unreadable.

    ``problems`` holds every problem found, each naming the file, the line (or record) and
    the field, such as ``data.jsonl line 7: field 'output' must be a non-empty string``.
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        self.problems = list(problems)
        super().__init__(message)


class KnowledgeBaseError(RagtuneError):
    """A knowledge base is missing, corrupt or was written by an incompatible version."""


class EmbedderMismatchError(KnowledgeBaseError):
    """The configured embedder is not the one the knowledge base was built with."""


class GenerationError(RagtuneError):
    """The generator failed: a local model error or a remote endpoint's error response."""
