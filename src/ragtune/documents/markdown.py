"""Markdown: one section per heading, with its heading path, read whole or line by line
(a large file streams, :mod:`ragtune.documents.streaming`)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ragtune.documents.protocol import Part, heading_path
from ragtune.documents.text import clean, decode, read_bytes
from ragtune.types import Document

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_BLOCK_START = re.compile(r"^\s*([-*+]\s|\d+[.)]\s|\||>|#|```|~~~|    )")


def _unwrap_markdown(text: str) -> str:
    """Join hard-wrapped lines of a paragraph (Markdown renders them as one line); list
    items, table rows, quotes and code keep their line breaks."""
    out: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            out.append(line)
            continue
        joinable = (not in_fence and out and out[-1].strip() and stripped
                    and not _MD_BLOCK_START.match(line)
                    and not out[-1].lstrip().startswith(("|", "```", "~~~", "#")))
        if joinable:
            out[-1] = out[-1].rstrip() + " " + stripped
        else:
            out.append(line)
    return "\n".join(out)


# a section longer than this is cut at its next blank line outside code (so that a file
# read as it streams holds one such section at a time, ragtune.documents.streaming)
MAX_SECTION_CHARS = 1024 * 1024
_FRONT_MATTER_LINES = 200  # front matter not closed within this many lines is text


def _front_matter(lines: Iterator[str]) -> tuple[str | None, int, list[str]]:
    """The front matter's ``title:`` (if any), how many lines the front matter takes, and
    the lines read that are text after all (a ``---`` first line never closed)."""
    first = next(lines, None)
    if first is None:
        return None, 0, []
    if first != "---":
        return None, 0, [first]
    read: list[str] = []
    for line in lines:
        if line == "---" and read:
            title = next((x.split(":", 1)[1].strip().strip("\"'") for x in read
                          if x.lower().startswith("title:")), None)
            return title, len(read) + 2, []
        read.append(line)
        if len(read) >= _FRONT_MATTER_LINES:
            break
    return None, 0, [first, *read]


def markdown_title(lines: Iterable[str]) -> str | None:
    """The front matter's title, else the first level-1 heading outside code."""
    rest = iter(lines)
    title, _, read = _front_matter(rest)
    if title is not None:
        return title
    in_fence = False
    for line in itertools.chain(read, rest):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        if match and len(match.group(1)) == 1:
            return match.group(2).strip()
    return None


def markdown_parts(lines: Iterable[str]) -> Iterator[Part]:
    """The sections of a Markdown text given line by line (without line ends): one per
    heading, with its heading path and first line; a section over
    :data:`MAX_SECTION_CHARS` goes on in a new one after a blank line outside code."""
    rest = iter(lines)
    _, skipped, read = _front_matter(rest)
    stack: list[str] = []
    levels: list[int] = []
    buf: list[str] = []
    size = 0
    start_line = skipped + 1
    in_fence = False

    def flush() -> Iterator[Part]:
        text = clean(_unwrap_markdown(_MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", "\n".join(buf)))))
        if text:
            yield text, None, heading_path(stack), start_line
        buf.clear()

    for i, line in enumerate(itertools.chain(read, rest), start=skipped + 1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        if match:
            yield from flush()
            start_line, size = i, 0  # a section's line is its heading's
            level = len(match.group(1))
            while levels and levels[-1] >= level:
                levels.pop()
                stack.pop()
            levels.append(level)
            stack.append(match.group(2).strip())
            continue
        if size > MAX_SECTION_CHARS and not in_fence and not line.strip():
            yield from flush()
            start_line, size = i + 1, 0
            continue
        buf.append(line)
        size += len(line) + 1
    yield from flush()


def load_markdown(path: Path, source: str) -> list[Document]:
    lines = decode(read_bytes(path), source).splitlines()
    return [Document.from_sections(source, list(markdown_parts(lines)),
                                   title=markdown_title(lines) or path.stem)]
