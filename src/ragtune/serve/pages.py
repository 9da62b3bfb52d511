"""``GET /v1/chunks/{id}/page.png``: the PDF page a chunk comes from, rendered by PDFium.

The page shows a cited passage where it sits: the image of its page, with the chunk's
``boxes`` (fractions of the page from its top-left corner, see
:mod:`ragtune.documents.boxes`) drawn over it. The chunk is named by its id, never by a
path, so a client can only see pages of documents in the knowledge base; only files that
are still where they were ingested from can be rendered.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

from ragtune.knowledge_base import KnowledgeBase
from ragtune.serve.errors import ApiError

MAX_SCALE = 3.0  # 216 dpi; a US Letter page is then 1836 x 2376 pixels


def png(rgb: Any) -> bytes:
    """A PNG file of an ``(height, width, 3)`` uint8 array (PNG spec: IHDR, IDAT, IEND;
    filter type 0 on every row)."""
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def block(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + block(b"IHDR", header)
            + block(b"IDAT", zlib.compress(rows, 6)) + block(b"IEND", b""))


def page_image(kb: KnowledgeBase, chunk_id: str, scale: float = 1.5) -> bytes:
    """The PNG of the page that chunk ``chunk_id`` comes from, ``scale`` pixels a point."""
    import numpy as np
    import pypdfium2 as pdfium

    if not 0.25 <= scale <= MAX_SCALE:
        raise ApiError(400, f"scale = {scale:g}; give one from 0.25 to {MAX_SCALE:g}",
                       param="scale")
    chunk = kb.reader.get([chunk_id]).get(chunk_id)
    if chunk is None:
        raise ApiError(404, f"no chunk {chunk_id!r} in this knowledge base; chunk ids come "
                       "with hits and citations", param="id")
    if chunk.page is None or not chunk.source.lower().endswith(".pdf"):
        raise ApiError(404, f"chunk {chunk_id!r} is not from a PDF page; only PDF pages "
                       "are rendered", param="id")
    path = Path(chunk.source)
    try:
        pdf = pdfium.PdfDocument(str(path))
    except (OSError, pdfium.PdfiumError):
        raise ApiError(404, f"the document of chunk {chunk_id!r} is no longer where it was "
                       "ingested from; ingest it again to see its pages", param="id") from None
    try:
        if not 1 <= chunk.page <= len(pdf):
            raise ApiError(404, f"the document of chunk {chunk_id!r} has {len(pdf)} pages "
                           f"now, not page {chunk.page}; ingest it again", param="id")
        page = pdf[chunk.page - 1]
        bitmap = page.render(scale=scale, rev_byteorder=True)
        pixels = np.asarray(bitmap.to_numpy())[:, :, :3]
        page.close()
    finally:
        pdf.close()
    return png(np.ascontiguousarray(pixels, dtype=np.uint8))
