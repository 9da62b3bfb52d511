"""What people see of a source: the name a knowledge base records for it, never the
absolute path that it stores as the source's id.

Sources stay stored as absolute paths (chunk ids, sync, dedup and ``kb remove`` rest on
them); answers and hits are relabelled with :meth:`KnowledgeBase.display_names` just
before they are shown, by the CLI and the server alike.

Example::

    names = kb.display_names()
    for hit in relabel_hits(kb.search("install"), names):
        print(hit.chunk.source)  # docs/install.md, uploads/alice/notes.md
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath

from ragtune.types import Answer, Chunk, Hit

__all__ = ["relabel_answer", "relabel_hits", "shown"]


def shown(source: str, names: Mapping[str, str]) -> str:
    """The display name of ``source``; its file name when the record has none (a chunk
    read between a write and its record), so that a server path never leaks."""
    return names.get(source) or PurePosixPath(source).name


def _relabel(chunk: Chunk, names: Mapping[str, str]) -> Chunk:
    return replace(chunk, source=shown(chunk.source, names))


def relabel_hits(hits: Sequence[Hit], names: Mapping[str, str]) -> list[Hit]:
    """``hits`` with each chunk's source replaced by its display name."""
    return [replace(h, chunk=_relabel(h.chunk, names)) for h in hits]


def relabel_answer(answer: Answer, names: Mapping[str, str]) -> Answer:
    """``answer`` with the sources of its citations, dropped hits and context relabelled."""
    return replace(
        answer, citations=tuple(replace(c, chunk=_relabel(c.chunk, names))
                                for c in answer.citations),
        dropped=tuple(relabel_hits(answer.dropped, names)),
        context=tuple(_relabel(c, names) for c in answer.context))
