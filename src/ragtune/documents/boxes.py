"""Where a passage sits on its PDF page: boxes of its lines, from PDFium's character boxes.

A box is ``(x0, y0, x1, y1)`` in fractions of the page's width and height, measured from
the page's top-left corner (as a browser draws it: multiply by the rendered page's width
and height for pixels). A passage gets one box per line it covers.

PDFium gives every character's box; asking for all of them costs about as much as
reading the page's text again, so each line of the page is measured by its first and last
characters, and a passage that starts or ends inside a line gets that part of the line,
interpolated by character position (exact for the lines it covers whole).

Example:
    >>> lines = ((0, 10, 0.1, 0.2, 0.5, 0.22), (11, 21, 0.1, 0.23, 0.6, 0.25))
    >>> span_boxes(lines, 5, 21)
    ((0.3, 0.2, 0.5, 0.22), (0.1, 0.23, 0.6, 0.25))
"""

from __future__ import annotations

import ctypes
import json
import re
from collections.abc import Sequence
from typing import Any

from ragtune.documents.text import clean

__all__ = ["Box", "LineBox", "boxes_from_json", "boxes_to_json", "line_boxes", "span_boxes"]

Box = tuple[float, float, float, float]  # x0, y0, x1, y1: fractions of the page, from top-left
LineBox = tuple[int, int, float, float, float, float]  # start, end (text offsets), then a Box

_LINE = re.compile(r"[^\r\n]+")


def _char_box(textpage: Any, index: int, rect: Any) -> tuple[float, float, float, float]:
    import pypdfium2.raw as raw

    raw.FPDFText_GetLooseCharBox(textpage.raw, index, ctypes.byref(rect))
    return rect.left, rect.right, rect.bottom, rect.top


def line_boxes(textpage: Any, raw_text: str, cleaned: str, width: float, height: float,
               offset: int = 0) -> tuple[LineBox, ...]:
    """The boxes of the lines of ``cleaned`` (``clean(raw_text[offset:...])``, a part of a
    page's text ``raw_text`` that starts at character ``offset``), each with its span in
    ``cleaned``. A line that cannot be found again after cleaning gets no box."""
    import pypdfium2.raw as raw

    if textpage.count_chars() < offset + len(raw_text) or width <= 0 or height <= 0:
        return ()
    rect = raw.FS_RECTF()
    out: list[LineBox] = []
    cursor = 0
    for match in _LINE.finditer(raw_text):
        text = match.group()
        first = match.start() + len(text) - len(text.lstrip())
        last = match.start() + len(text.rstrip()) - 1
        if last < first:
            continue
        line = " ".join(text.split())  # what cleaning makes of a line, mostly
        at = cleaned.find(line, cursor)
        if at < 0:  # control characters, composed accents: clean it as the page was
            line = clean(text)
            at = cleaned.find(line, cursor)
        if at < 0 and line.endswith("-"):  # a hyphen that cleaning joined to the next line
            line = line[:-1]
            at = cleaned.find(line, cursor)
        if at < 0 or not line:
            continue
        x0, _, b0, t0 = _char_box(textpage, offset + first, rect)
        _, x1, b1, t1 = _char_box(textpage, offset + last, rect)
        top, bottom = max(t0, t1), min(b0, b1)
        out.append((at, at + len(line), _fraction(min(x0, x1), width),
                    _fraction(height - top, height), _fraction(max(x0, x1), width),
                    _fraction(height - bottom, height)))
        cursor = at + len(line)
    return tuple(out)


def _fraction(value: float, whole: float) -> float:
    return round(min(1.0, max(0.0, value / whole)), 4)


def span_boxes(lines: Sequence[LineBox], start: int, end: int) -> tuple[Box, ...]:
    """The boxes of the text ``[start, end)``: one per line it overlaps, the first and the
    last cut where the span starts and ends (by character position along the line)."""
    out: list[Box] = []
    for s, e, x0, y0, x1, y1 in lines:
        if e <= start or s >= end or e <= s:
            continue
        a = (max(start, s) - s) / (e - s)
        b = (min(end, e) - s) / (e - s)
        out.append((round(x0 + (x1 - x0) * a, 4), y0, round(x0 + (x1 - x0) * b, 4), y1))
    return tuple(out)


def boxes_to_json(boxes: Sequence[Box]) -> str:
    """A chunk's boxes as stored: ``[[x0, y0, x1, y1], ...]``."""
    return json.dumps([list(b) for b in boxes], separators=(",", ":"))


def boxes_from_json(value: Any) -> tuple[Box, ...]:
    """Boxes read back from a store: a JSON string or a list, empty when absent."""
    if not value:
        return ()
    data = json.loads(value) if isinstance(value, str) else value
    return tuple((float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in data)
