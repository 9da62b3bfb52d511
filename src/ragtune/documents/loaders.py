"""Loaders for .txt .md .html .pdf .docx .json .jsonl, chosen by suffix (:data:`LOADERS`).

Each loader returns documents whose sections carry page (PDF), heading path and line.

The module is long because it holds one short reader per format side by side (the same
contract, registered by suffix in pyproject.toml); PDF tables and text decoding live in
their own modules.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ragtune.components import Registry
from ragtune.documents.boxes import line_boxes
from ragtune.documents.pdf_streams import pdf_expanded_bytes
from ragtune.documents.protocol import Loader
from ragtune.documents.tables import Table, filing_title, find_tables, has_table_lines
from ragtune.documents.text import clean, decode, read_bytes
from ragtune.errors import DocumentError
from ragtune.types import Document

_Part = tuple[str, int | None, str | None, int | None]  # text, page, heading, line


# the unpacked size a container file may have (a .docx is a zip of XML parts)
MAX_EXPANDED_BYTES = 64 * 1024 * 1024


def load_text(path: Path, source: str) -> list[Document]:
    text = clean(decode(read_bytes(path), source))
    return [Document.from_sections(source, [(text, None, None, 1)], title=path.stem)]


# --- Markdown ------------------------------------------------------------------------------

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


def _heading_path(stack: list[str]) -> str | None:
    return " › ".join(stack) if stack else None


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


def markdown_parts(lines: Iterable[str]) -> Iterator[_Part]:
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

    def flush() -> Iterator[_Part]:
        text = clean(_unwrap_markdown(_MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", "\n".join(buf)))))
        if text:
            yield text, None, _heading_path(stack), start_line
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


# --- HTML ----------------------------------------------------------------------------------

_SKIP_TAGS = {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg",
              "iframe", "template", "button", "select", "head", "-comment"}
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "pre",
               "blockquote", "br", "dt", "dd", "dl", "figure", "figcaption", "hr", "address",
               "caption", "thead", "tbody", "tfoot"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def _walk_html(node: Any, out: list[Any]) -> None:
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            out.append(child.text_content or "")
        elif tag in _SKIP_TAGS:
            continue
        elif tag in _HEADINGS:
            out.append((_HEADINGS[tag], child.text(strip=True, separator=" ")))
        else:
            block = tag in _BLOCK_TAGS
            if block:
                out.append("\n")
            _walk_html(child, out)
            if block:
                out.append("\n")
            elif tag in ("td", "th"):
                out.append(" | ")


def load_html(path: Path, source: str) -> list[Document]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(decode(read_bytes(path), source))
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else None
    root = tree.css_first("main") or tree.css_first("article") or tree.body
    if root is None:
        raise DocumentError(source, "HTML has no body")
    pieces: list[Any] = []
    try:
        _walk_html(root, pieces)
    except RecursionError:  # pathologically nested markup: fall back to flat text
        pieces = [root.text(separator="\n")]
    parts: list[_Part] = []
    stack: list[str] = []
    levels: list[int] = []
    buf: list[str] = []
    for piece in pieces:
        if isinstance(piece, tuple):
            text = clean("".join(buf))
            if text:
                parts.append((text, None, _heading_path(stack), None))
            buf.clear()
            level, heading = piece
            while levels and levels[-1] >= level:
                levels.pop()
                stack.pop()
            levels.append(level)
            stack.append(heading)
            title = title or heading
        else:
            buf.append(piece)
    text = clean("".join(buf))
    if text:
        parts.append((text, None, _heading_path(stack), None))
    return [Document.from_sections(source, parts, title=title or path.stem)]


# --- PDF -----------------------------------------------------------------------------------

def load_pdf(path: Path, source: str, *, tables: bool = True) -> list[Document]:
    """Text page by page through PDFium; pages are 1-based.

    Tables on a page (:mod:`ragtune.documents.tables`) become sections of kind ``table``
    between the page's text before and after them (``tables=False``: pages as plain text).
    An SEC filing is titled by its cover page: company, form and period.
    """
    import pypdfium2 as pdfium

    data = read_bytes(path)
    expanded = pdf_expanded_bytes(data, MAX_EXPANDED_BYTES, source)
    if expanded > MAX_EXPANDED_BYTES:
        raise DocumentError(source, f"its streams inflate to over {MAX_EXPANDED_BYTES / 1e6:.0f} "
                            "MB (images aside), more than a PDF's text needs (a PDF bomb, or a "
                            "document to split)")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise DocumentError(source, f"not a readable PDF ({exc}); is it corrupt or encrypted?"
                            ) from None
    try:
        title = (pdf.get_metadata_dict().get("Title") or "").strip()
        if len(re.findall(r"[^\W\d_]{2,}", title)) < 2:  # empty, or an id like 0000320193-22-70
            title = path.stem
        parts: list[_PdfPart] = []
        for number in range(len(pdf)):
            page = pdf[number]
            textpage = page.get_textpage()
            try:
                raw = textpage.get_text_range()
                if number == 0:
                    title = filing_title(raw) or title
                size = page.get_size()
                parts.extend(_page_parts(textpage, raw, number + 1, size) if tables else
                             [_text_part(textpage, raw, 0, number + 1, size)])
            finally:
                textpage.close()
                page.close()
    except pdfium.PdfiumError as exc:
        raise DocumentError(source, f"PDF page could not be read: {exc}") from None
    finally:
        pdf.close()
    return [Document.from_sections(source, parts, title=title)]


_PdfPart = tuple[str, int | None, str | None, int | None, str, tuple[Any, ...]]
def _text_part(textpage: Any, raw: str, offset: int, page: int,
               size: tuple[float, float]) -> _PdfPart:
    """Page text from character ``offset`` on, cleaned, with the boxes of its lines."""
    text = clean(raw, pdf=True)
    return (text, page, None, None, "text",
            line_boxes(textpage, raw, text, size[0], size[1], offset) if text else ())


def _page_parts(textpage: Any, raw: str, page: int,
                size: tuple[float, float]) -> list[_PdfPart]:
    """A page's text, cut around its tables, and the tables as Markdown sections."""
    tables = find_tables(textpage, raw) if has_table_lines(raw) else []
    parts: list[_PdfPart] = []
    cursor = 0
    for table in sorted(tables, key=lambda t: t.chars[0]):
        start, end = table.chars
        if start < cursor:  # out of reading order: its text stays text
            continue
        parts.append(_text_part(textpage, raw[cursor:start], cursor, page, size))
        parts.append(_table_part(table, page, size))
        cursor = end
    parts.append(_text_part(textpage, raw[cursor:], cursor, page, size))
    return parts


def _table_part(table: Table, page: int, size: tuple[float, float]) -> _PdfPart:
    """A table as Markdown, each row line with the box of its row on the page."""
    text = table.markdown()
    width, height = size
    lines = text.split("\n")
    boxes = []
    position = len(lines[0]) + len(lines[1]) + 2  # after the header and its rule
    for line, (left, bottom, right, top) in zip(lines[2:], table.boxes, strict=False):
        if width > 0 and height > 0:
            boxes.append((position, position + len(line), round(left / width, 4),
                          round(1 - top / height, 4), round(right / width, 4),
                          round(1 - bottom / height, 4)))
        position += len(line) + 1
    return (text, page, table.title or None, None, "table", tuple(boxes))


# --- DOCX ----------------------------------------------------------------------------------

def load_docx(path: Path, source: str) -> list[Document]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.text.paragraph import Paragraph
    from lxml.etree import XMLSyntaxError

    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(i.file_size for i in archive.infolist())
        if expanded > MAX_EXPANDED_BYTES:
            raise DocumentError(source, f"expands to {expanded / 1e6:.0f} MB, over the "
                                f"{MAX_EXPANDED_BYTES / 1e6:.0f} MB that a .docx may hold "
                                "unpacked (a zip bomb, or a document to split)")
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError, XMLSyntaxError,
            zipfile.BadZipFile) as exc:
        raise DocumentError(source, f"not a readable .docx file ({exc})") from None
    title = (document.core_properties.title or "").strip() or None
    parts: list[_Part] = []
    stack: list[str] = []
    levels: list[int] = []
    buf: list[str] = []

    def flush() -> None:
        text = clean("\n".join(buf))
        if text:
            parts.append((text, None, _heading_path(stack), None))
        buf.clear()

    body = document.element.body
    for element in body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "tbl":
            rows = element.iter("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}tr")
            for row in rows:
                cells = ["".join(t.text or "" for t in cell.iter(
                    "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}t"))
                    for cell in row.iterchildren() if cell.tag.endswith("}tc")]
                buf.append(" | ".join(c.strip() for c in cells))
            continue
        if tag != "p":
            continue
        paragraph = Paragraph(element, document)
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        text = paragraph.text
        level = None
        if style == "Title":
            title = title or text.strip()
            level = 1
        elif style.startswith("Heading"):
            digits = style.removeprefix("Heading").strip()
            level = int(digits) if digits.isdigit() else 1
        if level is not None and text.strip():
            flush()
            while levels and levels[-1] >= level:
                levels.pop()
                stack.pop()
            levels.append(level)
            stack.append(text.strip())
        else:
            buf.append(text)
    flush()
    return [Document.from_sections(source, parts, title=title or path.stem)]


# --- JSON / JSONL --------------------------------------------------------------------------

_TEXT_KEYS = ("text", "content", "body", "contents", "passage", "document", "context",
              "abstract", "original_text", "page_content")
_TITLE_KEYS = ("title", "name", "heading", "subject")


def _record_document(record: Any, source: str, index: int, line: int | None) -> Document | None:
    if isinstance(record, str):
        text, title = record, None
    elif isinstance(record, dict):
        title = next((str(record[k]) for k in _TITLE_KEYS if isinstance(record.get(k), str)), None)
        texts = [record[k] for k in _TEXT_KEYS if isinstance(record.get(k), str)]
        if texts:
            text = "\n\n".join(texts)
        else:  # no known text field: keep every string value, labelled
            text = "\n".join(f"{k}: {v}" for k, v in record.items()
                             if isinstance(v, str) and k not in _TITLE_KEYS)
        if isinstance(record.get("text"), list):
            text = "\n".join(str(t) for t in record["text"])
    else:
        return None
    text = clean(text)
    if not text:
        return None
    return Document.from_sections(source, [(text, None, title, line)], title=title, record=index)


def _json_records(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        yield from data
    elif isinstance(data, dict):
        if any(isinstance(data.get(k), str) for k in _TEXT_KEYS):
            yield data
        elif data and all(isinstance(v, dict) for v in data.values()):
            yield from data.values()  # {id: record, ...}
        else:
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) == 1:
                yield from lists[0]
            else:
                yield data
    else:
        yield data


def load_json(path: Path, source: str) -> list[Document]:
    text = decode(read_bytes(path), source)
    try:
        docs = [_record_document(r, source, i, None)
                for i, r in enumerate(_json_records(json.loads(text)))]
    except json.JSONDecodeError as exc:
        raise DocumentError(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                            f"{exc.msg}") from None
    except RecursionError:
        raise DocumentError(source, "JSON nested too deeply to read; flatten it") from None
    return [d for d in docs if d is not None]


def jsonl_documents(lines: Iterable[str], source: str) -> Iterator[Document]:
    """One document per record of a JSON Lines text given line by line; a line that is
    not JSON is an error naming it."""
    record = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = _record_document(json.loads(line), source, record, number)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{source}:{number}", f"invalid JSON on line {number}: {exc.msg}; "
                                "fix or remove that line") from None
        except RecursionError:
            raise DocumentError(f"{source}:{number}", f"JSON on line {number} is nested too "
                                "deeply to read; flatten it") from None
        if doc is not None:
            record += 1
            yield doc


def load_jsonl(path: Path, source: str) -> list[Document]:
    return list(jsonl_documents(decode(read_bytes(path), source).splitlines(), source))


# by file suffix, from the ragtune.loaders entry points (pyproject.toml)
LOADERS: Registry[Loader] = Registry("loaders", "file type")


def load(path: Path, source: str | None = None) -> list[Document]:
    """Read one file with the loader for its suffix."""
    source = source or str(path)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DocumentError(source, f"unsupported file type {path.suffix!r}; supported: "
                            f"{', '.join(sorted(LOADERS))}")
    return loader(path, source)
