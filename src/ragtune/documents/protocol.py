"""The Loader role: a function that reads one file into documents, and the parts loaders
build documents from."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ragtune.types import Document


class Loader(Protocol):
    """Reads ``path`` into documents whose ``source`` is ``source``.

    Raises :class:`ragtune.errors.DocumentError` naming the file (and line or page)
    when the file cannot be read.
    """

    def __call__(self, path: Path, source: str) -> list[Document]: ...


# a section as a loader finds it: text, page, heading path, line
Part = tuple[str, int | None, str | None, int | None]


def heading_path(stack: list[str]) -> str | None:
    """The heading path of a section: ``Install › From PyPI``."""
    return " › ".join(stack) if stack else None
