"""Tables found on PDF pages from PDFium's character boxes, and their row-wise chunks.

A financial statement laid out as text ("Total net sales 82,959 81,434 304,182 282,457")
loses which number belongs to which period once it is cut into passages. Here a page's
characters are grouped into words and lines by their boxes; a run of lines whose right side
holds right-aligned numbers, set apart from a label by a gap, is a table. Its value columns
are the clusters of those numbers' right edges; the lines above the first row that sit over
the columns are its header, each phrase going to every column it spans ("Three Months
Ended" over two, "June 25, 2022" over one); the line or two above that are its title.

A table becomes a section of kind ``table`` whose text is a Markdown table (header row,
rule, one row per line, group labels such as "Net sales:" folded into the rows under them).
:func:`chunk_table` cuts it into chunks of whole rows; each chunk's ``context`` holds the
document's title (the filing's company and quarter, see :func:`filing_title`), the
statement's title and the header row, so a row is found and read with its columns.

Only pages whose text has a few lines ending in several numbers are looked at character by
character, so PDFs without tables load as fast as before. A table of contents (section
titles beside page numbers) has that shape too and is left as text (:func:`is_contents`).

The module is long because finding a table is one pipeline over the same boxes (words,
lines, columns, header, title, rows) whose steps share their thresholds. It reads the
boxes PDFium (already the PDF reader) gives, so no second PDF parser is loaded.
``bench/sec_tables.py`` measures it against pdfplumber's table finder (BENCHMARKS.md).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.documents.text import clean

__all__ = ["Table", "chunk_table", "filing_title", "find_tables", "has_table_lines",
           "is_contents", "split_context", "table_context"]

_NUMBER = re.compile(r"^\(?-?\$?\(?\d[\d,]*(\.\d+)?\)?%?\)?$|^\(?\.\d+\)?%?$")
_DASH = {"—", "–", "-", "$—", "$–", "$-"}
_YEAR = re.compile(r"^(19|20)\d\d$")
# the tokens that end a table's line of page text: a quick sign a page holds a table
_CELL_TOKEN = re.compile(r"\(?\$?\d[\d,.]*\)?%?|—|\$|\)")
_LABEL_GAP = 8.0  # points between a row's label and its first value, at least
_COLUMN_GAP = 8.0  # points between the right edges of two value columns, at least


@dataclass(frozen=True)
class Table:
    """One table: ``columns`` head the value columns; each row is ``(label, cells)`` with
    one cell per column ("" where the row has none). ``chars`` is the span of PDFium
    character indices ``[start, end)`` on the page that the header and rows cover.

    Example:
        >>> t = Table("Sales (In millions)", ("2022", "2021"), (("Total", ("5", "4")),))
        >>> print(t.markdown())
        |  | 2022 | 2021 |
        |---|---|---|
        | Total | 5 | 4 |
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    chars: tuple[int, int] = (0, 0)
    # each row's (left, bottom, right, top) on the page, in PDF points
    boxes: tuple[tuple[float, float, float, float], ...] = ()

    def header(self) -> str:
        """The header row; the title is the section's heading, so its first cell is empty."""
        return _row("", self.columns)

    def markdown(self) -> str:
        rule = "|" + "---|" * (len(self.columns) + 1)
        return "\n".join([self.header(), rule, *(_row(label, cells) for label, cells
                                                 in self.rows)])


def _row(label: str, cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "/") for c in (label, *cells)) + " |"


# --- words and lines from character boxes ------------------------------------------------

@dataclass
class _Word:
    text: str
    x0: float
    x1: float
    bottom: float
    top: float
    first: int  # character indices
    last: int

    @property
    def middle(self) -> float:
        return (self.bottom + self.top) / 2


def _char_boxes(textpage: Any, n: int) -> list[tuple[float, float, float, float]]:
    """``(left, right, bottom, top)`` of each character in points; PDFium's loose boxes,
    which span the font's height, so that a comma and a digit share a line."""
    import pypdfium2.raw as raw

    rect = raw.FS_RECTF()
    boxes = []
    for i in range(n):
        raw.FPDFText_GetLooseCharBox(textpage.raw, i, ctypes.byref(rect))
        boxes.append((rect.left, rect.right, rect.bottom, rect.top))
    return boxes


def _words(text: str, boxes: Sequence[tuple[float, float, float, float]]) -> list[_Word]:
    words: list[_Word] = []
    current: _Word | None = None
    for i, ch in enumerate(text):
        x0, x1, b, t = boxes[i]
        if ch.isspace() or x1 <= x0 and t <= b:  # a space, or a generated character
            current = None
            continue
        height = max(t - b, 1.0)
        if (current is not None and abs((b + t) / 2 - current.middle) < height * 0.6
                and -height < x0 - current.x1 < max(1.5, height * 0.35)):
            current.text += ch
            current.x1, current.last = max(current.x1, x1), i
            current.bottom, current.top = min(current.bottom, b), max(current.top, t)
        else:
            current = _Word(ch, x0, x1, b, t, i, i)
            words.append(current)
    return words


def _lines(words: list[_Word]) -> list[list[_Word]]:
    """Words grouped into lines, top of the page first, each line left to right."""
    lines: list[list[_Word]] = []
    for word in sorted(words, key=lambda w: -w.middle):
        height = max(word.top - word.bottom, 1.0)
        if lines and abs(lines[-1][0].middle - word.middle) < height * 0.5:
            lines[-1].append(word)
        else:
            lines.append([word])
    return [sorted(line, key=lambda w: w.x0) for line in lines]


def _is_value(word: str) -> bool:
    return bool(_NUMBER.match(word)) or word in _DASH or word in ("$", ")", "%")


@dataclass
class _Line:
    words: list[_Word]
    label: list[_Word]
    values: list[_Word]  # numbers, each with its "$" and ")" joined

    @property
    def top(self) -> float:
        return max(w.top for w in self.words)

    @property
    def bottom(self) -> float:
        return min(w.bottom for w in self.words)

    @property
    def label_text(self) -> str:
        return " ".join(w.text for w in self.label)

    @property
    def is_row(self) -> bool:
        if not self.values or any(not _is_value(w.text) for w in self.values):
            return False
        if not self.label:  # a row of years is a header, not data
            return not all(_YEAR.match(w.text) for w in self.values)
        return self.values[0].x0 - self.label[-1].x1 >= _LABEL_GAP


def _split_line(words: list[_Word]) -> _Line:
    cut = len(words)
    while cut > 0 and _is_value(words[cut - 1].text):
        cut -= 1
    values: list[_Word] = []
    for w in words[cut:]:
        glue = values and (values[-1].text in ("$", "(", "($") or w.text in (")", "%", ")%"))
        if glue:
            prev = values[-1]
            values[-1] = _Word(prev.text + w.text, prev.x0, max(prev.x1, w.x1),
                               min(prev.bottom, w.bottom), max(prev.top, w.top), prev.first,
                               w.last)
        else:
            values.append(w)
    # a leading "$" alone is glued onto its number; one left at the end is not a value
    values = [v for v in values if v.text not in ("$", ")", "%")]
    return _Line(words, words[:cut], values)


# --- tables ----------------------------------------------------------------------------

def _clusters(edges: list[float]) -> list[float]:
    """The right edges of the value columns: centres of runs of close edges."""
    out: list[list[float]] = []
    for x in sorted(edges):
        if out and x - out[-1][-1] < _COLUMN_GAP:
            out[-1].append(x)
        else:
            out.append([x])
    return [sum(run) / len(run) for run in out]


def _nearest(x: float, centres: list[float]) -> int:
    return min(range(len(centres)), key=lambda j: abs(centres[j] - x))


def _table(lines: list[_Line], start: int, end: int) -> Table | None:
    body = lines[start:end]
    rows = [line for line in body if line.is_row]
    if len(rows) < 2:
        return None
    centres = _clusters([v.x1 for line in rows for v in line.values])
    # a column that only one row has values in is not a column (a page number, a note)
    support = [sum(any(_nearest(v.x1, centres) == j for v in line.values) for line in rows)
               for j in range(len(centres))]
    keep = [j for j, n in enumerate(support) if n >= 2]
    if not keep:
        return None
    if len(keep) < len(centres):
        kept = [centres[j] for j in keep]
        rows = [line for line in rows
                if any(abs(v.x1 - c) < _COLUMN_GAP for v in line.values for c in kept)]
        body = [line for line in body if not line.is_row or line in rows]
        centres = kept
        if len(rows) < 2:
            return None
    spans = [[min((v.x0 for line in rows for v in line.values
                   if _nearest(v.x1, centres) == j), default=c), c]
             for j, c in enumerate(centres)]
    values_left = min(s[0] for s in spans)
    pitch = min((b[1] - a[1] for a, b in zip(spans, spans[1:], strict=False)), default=80.0)
    # header: the lines just above the first row that reach over the value columns
    header_lines: list[_Line] = []
    i = start - 1
    while i >= 0 and len(header_lines) < 6:
        line, above = lines[i], lines[i + 1]
        height = max(line.top - line.bottom, 1.0)
        if line.bottom - above.top > 3 * height or line.is_row:
            break
        phrases = _phrases(line.words)
        edge = values_left - 2 * _COLUMN_GAP
        if not any(p.x1 > edge for p in phrases) or \
                any(p.x0 < edge - pitch / 2 and p.x1 > edge for p in phrases):
            break  # nothing over the columns, or a title across the page
        header_lines.insert(0, line)
        i -= 1
    # each column takes, on every header line, the phrase nearest to it: a phrase that
    # spans two columns ("Three Months Ended") is the nearest of both
    heads: list[list[str]] = [[] for _ in centres]
    stub: list[str] = []
    for line in header_lines:
        phrases = _phrases(line.words)
        over = [p for p in phrases if p.x1 > values_left - 2 * _COLUMN_GAP]
        stub.extend(p.text for p in phrases if p not in over)
        for j, (x0, x1) in enumerate(spans):
            gaps = [max(0.0, p.x0 - x1, x0 - p.x1) for p in over]
            if gaps and min(gaps) < 0.6 * pitch:
                heads[j].append(over[gaps.index(min(gaps))].text)
    # title: up to two lines above the header, close to it
    title_lines: list[str] = []
    j = i
    limit_top = (header_lines[0] if header_lines else lines[start])
    named = 0  # lines other than notes in brackets ("(In millions)", "(Unaudited)")
    while j >= 0 and named < 2 and len(title_lines) < 5:
        line = lines[j]
        height = max(line.top - line.bottom, 1.0)
        if line.bottom - limit_top.top > 4 * height or line.is_row:
            break
        words = " ".join(w.text for w in line.words)
        title_lines.insert(0, words)
        named += not words.startswith("(")
        limit_top = line
        j -= 1
    title = clean(" ".join([*title_lines, *stub]))
    out_rows: list[tuple[str, tuple[str, ...]]] = []
    row_boxes: list[tuple[float, float, float, float]] = []
    group = ""
    pending = ""  # a label wrapped onto the next line
    for n, line in enumerate(body):
        label = line.label_text
        if not line.is_row:
            label = " ".join(w.text for w in line.words)
            after = body[n + 1].label_text if n + 1 < len(body) else ""
            if label.endswith(":") or after[:1].isupper():  # a group's label
                group, pending = label.rstrip(":") + ":", ""
            else:  # a label wrapped onto the next line
                pending = f"{pending} {label}".strip()
            continue
        cells = [""] * len(centres)
        for v in line.values:
            k = _nearest(v.x1, centres)
            cells[k] = f"{cells[k]} {v.text}".strip()
        full = f"{pending} {label}".strip() if pending else label
        pending = ""
        shown = f"{group} {full}".strip() if group and full else (full or group)
        out_rows.append((clean(shown), tuple(cells)))
        row_boxes.append((min(w.x0 for w in line.words), line.bottom,
                          max(w.x1 for w in line.words), line.top))
        if full.lower().startswith("total"):
            group = ""
    first = min(w.first for line in (*header_lines, *body) for w in line.words)
    last = max(w.last for line in (*header_lines, *body) for w in line.words)
    columns = tuple(clean(" ".join(h)) or f"column {n}" for n, h in enumerate(heads, 1))
    return Table(title=title, columns=columns, rows=tuple(out_rows), chars=(first, last + 1),
                 boxes=tuple(row_boxes))


def _phrases(words: list[_Word]) -> list[_Word]:
    """Words of one line joined into phrases where they sit a space apart."""
    out: list[_Word] = []
    for w in words:
        height = max(w.top - w.bottom, 1.0)
        if out and w.x0 - out[-1].x1 < height * 0.8:
            p = out[-1]
            out[-1] = _Word(f"{p.text} {w.text}", p.x0, w.x1, min(p.bottom, w.bottom),
                            max(p.top, w.top), p.first, w.last)
        else:
            out.append(_Word(w.text, w.x0, w.x1, w.bottom, w.top, w.first, w.last))
    return out


def _runs(lines: list[_Line]) -> list[tuple[int, int]]:
    """``[start, end)`` line ranges that hold rows, allowing group labels between rows."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if not lines[i].is_row:
            i += 1
            continue
        start, end, rows = i, i + 1, 1
        j = i + 1
        while j < len(lines):
            line, previous = lines[j], lines[j - 1]
            height = max(previous.top - previous.bottom, 1.0)
            if previous.bottom - line.top > 2.5 * height:
                break
            if line.is_row:
                rows, end = rows + 1, j + 1
            elif not _is_label_line(line, lines[start:end]):
                break
            j += 1
        if rows >= 2:
            # a group label that opens the table belongs to it: one ending in ":", or one
            # right under the header ("Operations" under "2023 2022 2023 2022")
            while start > 0 and _is_label_line(lines[start - 1], lines[start:end]) and (
                    lines[start - 1].label_text.endswith(":") or
                    start > 1 and _is_header_line(lines[start - 2], lines[start:end])):
                start -= 1
            runs.append((start, end))
        i = max(end, i + 1)
    return runs


def _is_label_line(line: _Line, rows: list[_Line]) -> bool:
    """A line that stays left of the values: a group label or a wrapped row label."""
    values_left = min((v.x0 for r in rows if r.is_row for v in r.values), default=0.0)
    return bool(line.words) and max(w.x1 for w in line.words) < values_left - _LABEL_GAP


def _is_header_line(line: _Line, rows: list[_Line]) -> bool:
    """A line that is no row and reaches over the values: a line of the header."""
    values_left = min((v.x0 for r in rows if r.is_row for v in r.values), default=0.0)
    return bool(line.words) and not line.is_row and max(w.x1 for w in line.words) > values_left


def has_table_lines(text: str, at_least: int = 3) -> bool:
    """Whether a page's text has ``at_least`` lines of words ending in two or more numbers
    (token by token: a regular expression over whole lines backtracks on long prose)."""
    found = 0
    for line in text.splitlines():
        tokens = line.split()
        numbers = 0
        for n, token in enumerate(reversed(tokens)):
            if not _CELL_TOKEN.fullmatch(token):
                if numbers >= 2 and any(c.isalpha() for c in tokens[len(tokens) - 1 - n]):
                    found += 1
                break
            numbers += token not in ("$", ")")
        if found >= at_least:
            return True
    return False


def find_tables(textpage: Any, text: str | None = None) -> list[Table]:
    """The tables of one PDFium text page (``pypdfium2.PdfTextPage``), top to bottom.

    ``text`` is the page's full text (``textpage.get_text_range()``) if already read.
    """
    n = textpage.count_chars()
    text = textpage.get_text_range() if text is None else text
    if n <= 0 or len(text) != n:  # characters and text disagree: leave the page as text
        return []
    lines = [_split_line(words) for words in _lines(_words(text, _char_boxes(textpage, n)))]
    tables = [_table(lines, s, e) for s, e in _runs(lines)]
    return [t for t in tables if t is not None and not is_contents(t)]


def is_contents(table: Table) -> bool:
    """Whether a "table" is a table of contents: one column of page numbers (whole numbers
    with no separators, never going down the rows) beside section titles, in three rows
    or more. Its page text stays text.

    Example:
        >>> rows = (("Item 1. Financial Statements", ("3",)), ("Item 2. Risk", ("31",)),
        ...         ("Item 3. Exhibits", ("50",)))
        >>> is_contents(Table("INDEX Page", ("Page",), rows))
        True
    """
    if len(table.columns) != 1 or len(table.rows) < 3:
        return False
    cells = [cells[0] for _, cells in table.rows]
    if not all(re.fullmatch(r"\d{1,4}", c) for c in cells):
        return False
    pages = [int(c) for c in cells]
    return all(a <= b for a, b in zip(pages, pages[1:], strict=False))


# --- the filing's company and period -----------------------------------------------------

_PERIOD = re.compile(r"for the (quarterly period|fiscal year|quarter|year) ended\s+"
                     r"([A-Z][a-z]+\.?\s+\d{1,2},?\s+\d{4})", re.I)
_FORM = re.compile(r"\bFORM\s+(10-Q|10-K|20-F|8-K)\b")
_FILE_NUMBER = re.compile(r"commission file number", re.I)


def filing_title(first_page: str) -> str | None:
    """``Apple Inc. Form 10-Q, quarterly period ended June 25, 2022`` from an SEC filing's
    cover page text; None for a page that is not one."""
    form, period = _FORM.search(first_page), _PERIOD.search(first_page)
    if not form or not period:
        return None
    lines = [line.strip() for line in first_page.splitlines()]
    company = None
    for i, line in enumerate(lines):
        if line.lower().startswith("(exact name of registrant") and i > 0:
            company = lines[i - 1]
            break
    if company is None:
        for i, line in enumerate(lines[:-1]):
            if _FILE_NUMBER.search(line) and lines[i + 1] and not lines[i + 1].startswith("("):
                company = lines[i + 1]
                break
    if not company:
        return None
    if company.isupper():  # MICROSOFT CORPORATION → Microsoft Corporation
        company = company.title()
    kind = period.group(1).lower()
    kind = "quarterly period" if kind.startswith("quarter") else "fiscal year"
    date = " ".join(period.group(2).split())
    return f"{company} Form {form.group(1)}, {kind} ended {date}"


# --- chunks ------------------------------------------------------------------------------

def table_context(line: str, header: str) -> str:
    """A table chunk's context: the context line, then the table's header row."""
    return f"{line}\n{header}" if line else header


def split_context(context: str) -> tuple[str, str]:
    """``(context line, header row)`` of a table chunk's ``context``."""
    line, _, header = context.rpartition("\n")
    return (line, header) if header.startswith("|") else (context, "")


# at most, see chunk_table: with 2, bench/sec_tables.py's questions found 19 of 20; 4, 8: 18
ROWS_PER_CHUNK = 2


def chunk_table(text: str, count: Any, max_tokens: int, context: str,
                max_rows: int | None = None) -> list[tuple[int, int, str]]:
    """Row-wise pieces of a table section's ``text`` (its Markdown, :meth:`Table.markdown`):
    ``(start, end, context)`` spans of whole rows, as many as fit ``max_tokens`` together
    with the context (the context line and the header row, which every piece repeats), and
    at most ``max_rows`` (default :data:`ROWS_PER_CHUNK`): a row among many others in one
    chunk ranks below a few rows that share one of its words."""
    max_rows = ROWS_PER_CHUNK if max_rows is None else max_rows
    lines = text.split("\n")
    header = lines[0]
    full = table_context(context, header)
    offsets, position = [], 0
    for line in lines:
        offsets.append((position, position + len(line)))
        position += len(line) + 1
    rows = list(range(2, len(lines)))  # after the header and its rule
    if not rows:
        return []
    budget = max(1, max_tokens - count([full])[0])
    sizes = count([lines[r] for r in rows])
    pieces: list[tuple[int, int, str]] = []
    first, used = rows[0], 0
    for r, size in zip(rows, sizes, strict=True):
        if used and (used + size > budget or r - first >= max_rows):
            pieces.append((offsets[first][0], offsets[r - 1][1], full))
            first, used = r, 0
        used += size
    pieces.append((offsets[first][0], offsets[rows[-1]][1], full))
    return pieces
