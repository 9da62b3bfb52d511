"""Loaders for .txt .html .pdf .docx, and the registry of every file type's loader by
suffix (:data:`LOADERS`, from the entry points in pyproject.toml: Markdown and JSON have
modules of their own, as have PDF tables and text decoding).

Each loader returns documents whose sections carry page (PDF), heading path and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ragtune.components import Registry
from ragtune.documents.boxes import line_boxes
from ragtune.documents.pdf_streams import pdf_expanded_bytes
from ragtune.documents.protocol import Loader, Part, heading_path
from ragtune.documents.tables import Table, filing_title, find_tables, has_table_lines
from ragtune.documents.text import clean, decode, read_bytes
from ragtune.errors import DocumentError
from ragtune.types import Document

# the unpacked size a container file may have (a .docx is a zip of XML parts)
MAX_EXPANDED_BYTES = 64 * 1024 * 1024


def load_text(path: Path, source: str) -> list[Document]:
    text = clean(decode(read_bytes(path), source))
    return [Document.from_sections(source, [(text, None, None, 1)], title=path.stem)]


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
    parts: list[Part] = []
    stack: list[str] = []
    levels: list[int] = []
    buf: list[str] = []
    for piece in pieces:
        if isinstance(piece, tuple):
            text = clean("".join(buf))
            if text:
                parts.append((text, None, heading_path(stack), None))
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
        parts.append((text, None, heading_path(stack), None))
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
    parts: list[Part] = []
    stack: list[str] = []
    levels: list[int] = []
    buf: list[str] = []

    def flush() -> None:
        text = clean("\n".join(buf))
        if text:
            parts.append((text, None, heading_path(stack), None))
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
