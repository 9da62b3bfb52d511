"""The Loader role: a function that reads one file into documents."""

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
