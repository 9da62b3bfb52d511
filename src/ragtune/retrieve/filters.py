"""Metadata filters: restrict a search to some sources, pages or ingest times.

A filter becomes a boolean mask over the rows of the knowledge base's read view; dense
and BM25 search then run over the masked rows only (pre-filtering, so a narrow filter
still returns ``k`` hits when ``k`` rows match).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ragtune.errors import ConfigError


@dataclass(frozen=True)
class Filter:
    """Which chunks a search may return; every field set must match.

    ``source`` is a glob matched against the stored path (``*handbook*.pdf``), its file
    name, or its last folders and name, so that a name as citations show it
    (``docs/guide/*.md``, ``uploads/alice/*``) matches; ``pages`` an inclusive range of
    1-based pages; ``since``/``until`` Unix times of ingest. ``sources``: exact stored
    paths (a server resolves a client's glob against the names it shows, so that a glob
    over its own folders matches nothing: :func:`shown_sources`).

    Example:
        >>> Filter(source="*.pdf", pages=(3, 7))
        Filter(source='*.pdf', pages=(3, 7), since=None, until=None, sources=None)
    """

    source: str | None = None
    pages: tuple[int, int] | None = None
    since: float | None = None
    until: float | None = None
    sources: frozenset[str] | None = None

    @property
    def empty(self) -> bool:
        return self == Filter()

    def mask(self, view: Any) -> np.ndarray:
        """One boolean per row of ``view`` (a :class:`ragtune.index.reader.ReadView`)."""
        n = len(view)
        keep = np.ones(n, dtype=bool)
        if self.source:
            sources = view.column("source").to_pylist()
            matching = {s for s in set(sources)
                        if fnmatch.fnmatch(s, self.source)
                        or fnmatch.fnmatch(s.rsplit("/", 1)[-1], self.source)
                        or fnmatch.fnmatch(s, "*/" + self.source)}
            keep &= np.fromiter((s in matching for s in sources), dtype=bool, count=n)
        if self.sources is not None:
            allowed = self.sources
            keep &= np.fromiter((s in allowed for s in view.column("source").to_pylist()),
                                dtype=bool, count=n)
        if self.pages:
            low, high = self.pages
            pages = view.column("page").to_numpy(zero_copy_only=False)
            pages = np.asarray(pages, dtype=np.float64)  # nulls become NaN: no page, no match
            keep &= (pages >= low) & (pages <= high)
        if self.since is not None or self.until is not None:
            times = np.asarray(view.column("ingested_at").to_numpy(zero_copy_only=False),
                               dtype=np.float64)
            if self.since is not None:
                keep &= times >= self.since
            if self.until is not None:
                keep &= times <= self.until
        return keep


def parse_pages(text: str) -> tuple[int, int]:
    """``"7"`` → (7, 7); ``"3-7"`` → (3, 7)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not match:
        raise ConfigError(f"pages {text!r}: expected a page or a range like 3-7")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low < 1 or high < low:
        raise ConfigError(f"pages {text!r}: pages start at 1 and the range must not be empty")
    return low, high


def parse_time(text: str) -> float:
    """An ISO date or date-time (``2026-01-31``, ``2026-01-31T12:00``) as a Unix time."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigError(f"time {text!r}: expected an ISO date like 2026-01-31 or "
                          "2026-01-31T12:00") from None


def shown_sources(glob: str, names: Mapping[str, str]) -> frozenset[str]:
    """The stored paths whose shown name (``names``: stored -> shown, see
    :mod:`ragtune.display`) or its file name matches ``glob``.

    >>> sorted(shown_sources("docs/*.md", {"/srv/kb/docs/a.md": "docs/a.md",
    ...                                     "/srv/kb/b.txt": "b.txt"}))
    ['/srv/kb/docs/a.md']
    """
    return frozenset(stored for stored, name in names.items()
                     if fnmatch.fnmatch(name, glob)
                     or fnmatch.fnmatch(name.rsplit("/", 1)[-1], glob))
