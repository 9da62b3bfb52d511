"""Text files too large to hold whole, chunked as they are read.

A plain-text, Markdown or JSON Lines file over :data:`STREAM_FROM_BYTES` is read in blocks
and gives the chunks that reading it whole gives, holding a bounded part of it at a time:

- Markdown, one section at a time (a heading's text, never much over
  :data:`~ragtune.documents.markdown.MAX_SECTION_CHARS` characters, see
  :func:`~ragtune.documents.markdown.markdown_parts`);
- JSON Lines, one record (line) at a time;
- plain text as below.

A ``.txt`` file is read in blocks, decoded, cleaned and
chunked as it goes, holding about :data:`WINDOW_CHARS` characters of text at a time (and
never more than twice :data:`MAX_WINDOW_CHARS`), so its size on disk bounds the time an ingest
takes but not its memory. The chunks are exactly those that reading the whole file gives
(:func:`ragtune.documents.loaders.load_text`, then
:func:`ragtune.documents.chunking.chunk_document`), because the text is only cut where
whole-text processing cuts anyway:

- cleaning (:func:`ragtune.documents.text.clean`) after a line end that a word character
  follows, where each piece cleans to what the whole text cleans to at that place;
- chunking after a paragraph break (a blank line), where sentence splitting always ends a
  sentence; packing sentences into chunks carries over from one window to the next.

One exception: a paragraph longer than :data:`MAX_WINDOW_CHARS` (a file without blank
lines, or one 20 MB line) is cut at its last line end or space within that bound, so a
sentence that crosses the cut is split there.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ragtune.documents import json_records, loaders, markdown
from ragtune.documents.chunking import CountTokens, chunk_document, chunk_section, chunk_spans
from ragtune.documents.text import (
    BLOCK_BYTES,
    MAX_FILE_BYTES,
    clean_lines,
    detect_encoding,
    read_blocks,
    undecodable,
)
from ragtune.types import Chunk, Document, sections_of

STREAM_FROM_BYTES = 8 * 1024 * 1024  # smaller files are read whole
# the built-in loaders that have a streamed reading here, by the suffixes they read
STREAMED = {".txt": loaders.load_text, ".text": loaders.load_text,
            ".md": markdown.load_markdown, ".markdown": markdown.load_markdown,
            ".jsonl": json_records.load_jsonl}
WINDOW_CHARS = 1024 * 1024  # text chunked at a time, cut after a paragraph break
MAX_WINDOW_CHARS = 4 * WINDOW_CHARS  # a paragraph longer than this is cut at a line or space
SAMPLE_BYTES = 1024 * 1024  # what the encoding of a file not in UTF-8 is detected from

# where cleaning may cut: after a line end that a word character follows
_CLEAN_CUT = re.compile(r"[\r\n](?=\w)")
# where chunking may cut: after a blank line (cleaned text has no spaces around line ends)
_PARAGRAPH_CUT = re.compile(r"\n\n+(?=[^\n])")
_FORCED_CUT = re.compile(r"[\n ](?=[^\n ])")


def streams(path: Path) -> bool:
    """Whether ingest reads ``path`` in blocks rather than whole: a large plain-text,
    Markdown or JSON Lines file that the built-in loader of its suffix reads (a plugin's
    loader reads its files whole)."""
    suffix = path.suffix.lower()
    try:
        return (suffix in STREAMED and loaders.LOADERS.get(suffix) is STREAMED[suffix]
                and path.stat().st_size > STREAM_FROM_BYTES)
    except OSError:
        return False  # the whole-file reader reports why it cannot be read


def digest(path: Path, limit: int = MAX_FILE_BYTES, block: int = BLOCK_BYTES) -> tuple[str, int]:
    """The SHA-256 and size of the file, read in blocks."""
    sha, size = hashlib.sha256(), 0
    for data in read_blocks(path, limit, block):
        sha.update(data)
        size += len(data)
    return sha.hexdigest(), size


def _last_cut(pattern: re.Pattern[str], text: str) -> int | None:
    cut = None
    for m in pattern.finditer(text):
        cut = m.end()
    return cut


def file_encoding(path: Path, source: str, limit: int = MAX_FILE_BYTES,
                  block: int = BLOCK_BYTES) -> str:
    """The codec the whole file decodes with: what :func:`~ragtune.documents.text.decode`
    would choose, detected from the first :data:`SAMPLE_BYTES` when the file is not UTF-8,
    then checked over the whole file."""
    head = b""
    for data in read_blocks(path, limit, block):
        head += data
        if len(head) >= SAMPLE_BYTES:
            break
    encoding = detect_encoding(head, source, partial=True)
    for _ in decoded_blocks(path, source, encoding, limit, block):
        pass
    return encoding


def decoded_blocks(path: Path, source: str, encoding: str, limit: int = MAX_FILE_BYTES,
                   block: int = BLOCK_BYTES) -> Iterator[str]:
    """The file's text in blocks; a character cut at a block edge is joined."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    for data in read_blocks(path, limit, block):
        try:
            yield decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise undecodable(source, encoding, exc, offset) from None
        offset += len(data)
    try:
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise undecodable(source, encoding, exc, offset) from None


def _cut(text: str, pattern: re.Pattern[str], most: int) -> int | None:
    """Where ``text`` may be cut by ``pattern``, or forced once it is ``most`` long."""
    cut = _last_cut(pattern, text)
    if cut is None and len(text) >= most:
        cut = _last_cut(_FORCED_CUT, text) or len(text)
    return cut


def cleaned_blocks(blocks: Iterable[str], most: int = MAX_WINDOW_CHARS) -> Iterator[str]:
    """:func:`~ragtune.documents.text.clean` of the joined ``blocks``, in pieces."""
    pending = ""
    leading = True  # the whole text's leading whitespace is stripped
    for block in blocks:
        pending += block
        cut = _cut(pending, _CLEAN_CUT, most)
        if cut is None:
            continue
        text = clean_lines(pending[:cut])
        if pending[cut - 1] == " ":  # a forced cut after a space: keep the words apart
            text += " "
        pending = pending[cut:]
        if leading:
            text = text.lstrip()
            leading = not text
        yield text
    text = clean_lines(pending).rstrip()
    yield text.lstrip() if leading else text


def windows(texts: Iterable[str], size: int = WINDOW_CHARS,
            most: int = MAX_WINDOW_CHARS) -> Iterator[tuple[int, str]]:
    """``(offset, text)`` windows of the joined ``texts``, each about ``size`` characters
    and ending after a paragraph break (the last one ends with the text)."""
    buffer, offset = "", 0
    for text in texts:
        buffer += text
        if len(buffer) < size:
            continue
        cut = _cut(buffer, _PARAGRAPH_CUT, most)
        if cut:
            yield offset, buffer[:cut]
            offset += cut
            buffer = buffer[cut:]
    if buffer:
        yield offset, buffer


def decoded_lines(blocks: Iterable[str]) -> Iterator[str]:
    """The lines of the joined ``blocks`` without their line ends, as ``str.splitlines``
    gives them (a ``\\r\\n`` cut by a block edge is one line end)."""
    pending = ""
    for block in blocks:
        pending += block
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines else ""  # it may go on in the next block
        for line in lines:
            yield line.splitlines()[0]
    if pending:
        yield pending.splitlines()[0]


def stream_chunks(path: Path, source: str, count: CountTokens, max_tokens: int = 200,
                  overlap: int = 40, *, limit: int = MAX_FILE_BYTES, block: int = BLOCK_BYTES,
                  window: int = WINDOW_CHARS,
                  most: int = MAX_WINDOW_CHARS) -> Iterator[Chunk]:
    """The chunks of a text file, read in blocks (see the module's description): plain
    text, Markdown or JSON Lines by its suffix.

    Raises :class:`~ragtune.errors.DocumentError` as the whole-file loader does; the
    encoding is checked over the whole file before the first chunk is given (a JSON Lines
    line that is not JSON fails when it is reached).
    """
    encoding = file_encoding(path, source, limit, block)

    def lines() -> Iterator[str]:
        return decoded_lines(decoded_blocks(path, source, encoding, limit, block))

    loader = STREAMED.get(path.suffix.lower(), loaders.load_text)
    if loader is markdown.load_markdown:
        # the title (front matter, else the first level-1 heading) first: every chunk has it
        doc = Document(source=source, sections=(),
                       title=markdown.markdown_title(lines()) or path.stem)
        for section in sections_of(markdown.markdown_parts(lines())):
            yield from chunk_section(doc, section, count, max_tokens, overlap)
    elif loader is json_records.load_jsonl:
        for record in json_records.jsonl_documents(lines(), source):
            yield from chunk_document(record, count, max_tokens, overlap)
    else:
        text = cleaned_blocks(decoded_blocks(path, source, encoding, limit, block), most)
        yield from chunk_spans(source, path.stem, windows(text, window, most), count,
                               max_tokens, overlap)
