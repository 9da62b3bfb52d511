"""Cut documents into chunks of at most ``max_tokens`` embedder tokens, on sentence boundaries.

Pieces are split hierarchically, each level only where a piece is still too long:
paragraphs (blank lines) → sentences (``.!?`` and the Chinese ``。！？；``) → lines → words
(CJK characters one by one). Sentences are then packed greedily; each chunk after the first
starts with trailing sentences of the previous one worth at most ``overlap`` tokens.
Chunks never cross a section, so every chunk has exactly one page and one heading.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from ragtune.documents.boxes import span_boxes
from ragtune.documents.tables import chunk_table
from ragtune.types import Chunk, Document, Section

CountTokens = Callable[[Sequence[str]], list[int]]

_PARAGRAPH = re.compile(r"\n\s*\n")
# a sentence ends at .!? (plus closing quotes/brackets) before whitespace, or at CJK stops
_SENTENCE_END = re.compile(r"(?:[.!?][\"'”’)\]]*(?=\s)|[。！？；][”’」』）]*)")
_ABBREVIATIONS = {"e.g", "i.e", "mr", "mrs", "ms", "dr", "prof", "vs", "etc", "inc", "ltd", "co",
                  "no", "fig", "al", "st", "jr", "sr", "u.s", "approx", "dept", "est", "vol"}
_ATOM = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff]|[^\s\u3400-\u9fff\uf900-\ufaff"
                   r"\u3040-\u30ff]+\s*|\s+")

Span = tuple[int, int]


def _strip_span(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _split(text: str, start: int, end: int, pattern: re.Pattern[str], keep: bool) -> list[Span]:
    """Split ``text[start:end]`` at ``pattern``; ``keep`` leaves the match on the left piece."""
    spans: list[Span] = []
    cursor = start
    for m in pattern.finditer(text, start, end):
        cut = m.end() if keep else m.start()
        if keep and m.group().startswith(".") and not _is_sentence_end(text, m.start()):
            continue
        span = _strip_span(text, cursor, cut)
        if span:
            spans.append(span)
        cursor = m.end()
    span = _strip_span(text, cursor, end)
    if span:
        spans.append(span)
    return spans


def _is_sentence_end(text: str, dot: int) -> bool:
    word_start = dot
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lstrip("(\"'")
    if word.lower() in _ABBREVIATIONS:
        return False
    return not (len(word) == 1 and word.isupper())  # initials: "J. Smith"


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of ``text[start:end]``, paragraph breaks always ending a sentence."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    for p_start, p_end in _split(text, start, end, _PARAGRAPH, keep=False):
        spans.extend(_split(text, p_start, p_end, _SENTENCE_END, keep=True))
    return spans


def _atoms(text: str, start: int, end: int, longest: int) -> list[Span]:
    """Words with their trailing space (CJK characters one by one); a word over
    ``longest`` characters (a base64 blob, a line of 20 MB without a space) in slices of
    that length, so that no chunk is much over its token budget."""
    spans: list[Span] = []
    for m in _ATOM.finditer(text, start, end):
        a, b = m.span()
        spans.extend((i, min(i + longest, b)) for i in range(a, b, longest))
    return spans


def _fit(text: str, spans: list[Span], count: CountTokens,
         max_tokens: int) -> list[tuple[Span, int]]:
    """Spans with their token counts, splitting any over ``max_tokens`` at a finer level."""
    counts = count([text[s:e] for s, e in spans])
    out: list[tuple[Span, int]] = []
    for (s, e), n in zip(spans, counts, strict=True):
        if n <= max_tokens:
            out.append(((s, e), n))
            continue
        lines = _split(text, s, e, re.compile(r"\n"), keep=False)
        if len(lines) > 1:
            out.extend(_fit(text, lines, count, max_tokens))
            continue
        out.extend(_pack_atoms(text, s, e, count, max_tokens))
    return out


def _pack_atoms(text: str, s: int, e: int, count: CountTokens,
                max_tokens: int) -> list[tuple[Span, int]]:
    atoms = _atoms(text, s, e, 4 * max_tokens)
    counts = count([text[a:b] for a, b in atoms])
    out: list[tuple[Span, int]] = []
    cur_start, cur_n, cur_end = atoms[0][0], 0, atoms[0][0]
    for (a, b), n in zip(atoms, counts, strict=True):
        if cur_n and cur_n + n > max_tokens:
            span = _strip_span(text, cur_start, cur_end)
            if span:
                out.append((span, cur_n))
            cur_start, cur_n = a, 0
        cur_n += n
        cur_end = b
    span = _strip_span(text, cur_start, cur_end)
    if span:
        out.append((span, cur_n))
    return out


def pack(pieces: Iterable[tuple[Span, int]], max_tokens: int,
         overlap: int) -> list[tuple[Span, int]]:
    """Greedy packing of consecutive pieces into chunks of at most ``max_tokens`` tokens."""
    return list(pack_stream(pieces, max_tokens, overlap))


def pack_stream(pieces: Iterable[tuple[Span, int]], max_tokens: int,
                overlap: int) -> Iterator[tuple[Span, int]]:
    """:func:`pack`, giving each chunk as soon as the piece after it is known, so that
    only the pieces of one chunk are held."""
    source = iter(pieces)
    window: list[tuple[Span, int]] = []  # the pieces from the next chunk's first on
    while True:
        j, total = 0, 0
        while True:
            if j == len(window):
                piece = next(source, None)
                if piece is None:
                    break
                window.append(piece)
            if j and total + window[j][1] > max_tokens:
                break
            total += window[j][1]
            j += 1
        if not j:
            return
        yield (window[0][0][0], window[j - 1][0][1]), total
        if j == len(window):  # the pieces ran out
            return
        # step back over trailing pieces worth <= overlap tokens, always moving forward
        back, carried = j, 0
        while back - 1 > 0 and carried + window[back - 1][1] <= overlap:
            back -= 1
            carried += window[back][1]
        del window[:back]


def chunk_id(source: str, record: int | None, start: int, text: str) -> str:
    """A stable id: the same text at the same place in the same source keeps its id."""
    key = f"{source}\x00{record}\x00{start}\x00{text}".encode()
    return hashlib.sha1(key).hexdigest()[:20]


def context_line(title: str | None, heading: str | None, limit: int = 200) -> str:
    """The document-level context indexed with each chunk: ``title › section path``."""
    parts = [p for p in (title, heading) if p]
    if len(parts) == 2 and parts[1].startswith(parts[0]):
        parts = [parts[1]]
    line = " › ".join(parts)
    return line[:limit]


def _chunk(doc: Document, section: Section, s: int, e: int, body: str, context: str,
           kind: str = "text") -> Chunk:
    """The chunk of ``section`` spanning ``s:e`` (offsets in the section's text)."""
    start = section.start + s
    return Chunk(
        id=chunk_id(doc.source, doc.record, start, body), source=doc.source, text=body,
        start=start, end=section.start + e, page=section.page, heading=section.heading,
        line=section.line, title=doc.title, record=doc.record, context=context, kind=kind,
        boxes=span_boxes(section.boxes, s, e))


def chunk_section(doc: Document, section: Section, count: CountTokens, max_tokens: int,
                  overlap: int) -> list[Chunk]:
    text = section.text
    context = context_line(doc.title, section.heading)
    if section.kind == "table":
        return _table_chunks(doc, section, count, max_tokens, context)
    pieces = _fit(text, split_sentences(text), count, max_tokens)
    return [_chunk(doc, section, s, e, text[s:e], context)
            for (s, e), _ in pack(pieces, max_tokens, overlap)]


def chunk_spans(source: str, title: str | None, windows: Iterable[tuple[int, str]],
                count: CountTokens, max_tokens: int, overlap: int) -> Iterator[Chunk]:
    """The chunks of one text given as ``(offset, text)`` windows, each cut after a
    paragraph break: those of a document with that text as its one section (line 1),
    holding only the windows that the chunk being packed spans."""
    doc = Document(source=source, sections=(), title=title)
    section = Section(text="", start=0, line=1)
    context = context_line(title, None)
    held: list[tuple[int, str]] = []  # windows from the one the next chunk starts in

    def pieces() -> Iterator[tuple[Span, int]]:
        for offset, text in windows:
            held.append((offset, text))
            for (s, e), n in _fit(text, split_sentences(text), count, max_tokens):
                yield (offset + s, offset + e), n

    for (s, e), _ in pack_stream(pieces(), max_tokens, overlap):
        while len(held) > 1 and held[1][0] <= s:
            del held[0]
        offset, text = held[0]
        if e > offset + len(text):  # a chunk across windows
            text = "".join(t for _, t in held)
        body = text[s - offset:e - offset]
        yield _chunk(doc, section, s, e, body, context)


def _table_chunks(doc: Document, section: Section, count: CountTokens, max_tokens: int,
                  context: str) -> list[Chunk]:
    """Whole rows of a table section, each chunk with the header row in its context."""
    chunks = []
    for s, e, full in chunk_table(section.text, count, max_tokens, context):
        chunks.append(_chunk(doc, section, s, e, section.text[s:e], full, kind="table"))
    return chunks


def chunk_document(doc: Document, count: CountTokens, max_tokens: int = 200,
                   overlap: int = 40) -> list[Chunk]:
    """All chunks of ``doc``; ``count`` gives token counts in the embedder's tokenizer.

    Example:
        >>> doc = Document.from_text("a.txt", "One. Two. Three.")
        >>> [c.text for c in chunk_document(doc, lambda ts: [len(t.split()) for t in ts], 2, 0)]
        ['One. Two.', 'Three.']
    """
    if max_tokens < 1 or overlap < 0 or overlap >= max_tokens:
        raise ValueError(f"need max_tokens >= 1 and 0 <= overlap < max_tokens; "
                         f"got max_tokens={max_tokens}, overlap={overlap}")
    chunks: list[Chunk] = []
    for section in doc.sections:
        chunks.extend(chunk_section(doc, section, count, max_tokens, overlap))
    return chunks
