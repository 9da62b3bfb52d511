"""What a PDF's streams inflate to, counted before PDFium parses it (a PDF bomb is a few
KB of Flate data that inflates to gigabytes).

Every Flate stream but images (text extraction never decodes them) is inflated at most
1 MiB at a time and only counted, until the total passes the limit. An encrypted PDF's
streams are ciphertext: they are decrypted first with pdfminer.six's standard security
handler (the password-less case, the only one PDFium opens here), each with its exact
``/Length``. An encrypted PDF whose streams cannot be checked so is refused.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable

from ragtune.errors import DocumentError

_STREAM = re.compile(rb"(?<!end)stream\r?\n")
_OBJECT = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_LENGTH = re.compile(rb"/Length\s+(\d+)(?:\s+(\d+)\s+R)?")
_ENCRYPTED = re.compile(rb"/Encrypt\b")
_HEAD = 4096  # bytes before a stream searched for its object's number and dictionary

Decrypt = Callable[[int, int, bytes], bytes]


def _inflated(data: bytes | memoryview, at: int, limit: int, total: int) -> int:
    """``total`` plus what the Flate data from ``at`` inflates to, counted until it passes
    ``limit``; data that is not Flate adds nothing."""
    inflate = zlib.decompressobj()
    try:
        while at < len(data) and not inflate.eof and total <= limit:
            piece = data[at:at + 65536]
            at += len(piece)
            total += len(inflate.decompress(piece, 1 << 20))
            while inflate.unconsumed_tail and total <= limit:  # at most 1 MiB at a time
                total += len(inflate.decompress(inflate.unconsumed_tail, 1 << 20))
    except zlib.error:
        pass  # not Flate, encrypted or damaged: PDFium decides
    return total


def _head(data: bytes, start: int) -> tuple[re.Match[bytes] | None, bytes]:
    """The ``N G obj`` before a stream starting at ``start`` and the dictionary after it."""
    before = data[max(0, start - _HEAD):start]
    headers = list(_OBJECT.finditer(before))
    header = headers[-1] if headers else None
    return header, before[header.end():] if header else before.rsplit(b" obj", 1)[-1]


def pdf_expanded_bytes(data: bytes, limit: int, source: str = "") -> int:
    """What the PDF's Flate streams inflate to, images left out, counted without holding
    it and only until it passes ``limit``. Raises :class:`DocumentError` for an encrypted
    PDF whose streams cannot be decrypted to be counted."""
    view = memoryview(data)
    total = 0
    for m in _STREAM.finditer(data):
        if b"/Image" in _head(data, m.start())[1]:
            continue
        total = _inflated(view, m.end(), limit, total)
        if total > limit:
            return total
    if _ENCRYPTED.search(data):
        decrypt = _decryptor(data, source)
        if decrypt is not None:
            total = _encrypted_bytes(data, decrypt, limit, total, source)
    return total


def _decryptor(data: bytes, source: str) -> Decrypt | None:
    """The document's stream decryption with the empty password; None when it is not
    encrypted after all, or needs a password (PDFium then refuses it)."""
    from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFParser

    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)), password="")
    except PDFPasswordIncorrect:
        return None
    except Exception as exc:  # pdfminer's own errors, for PDFs it cannot read
        raise DocumentError(source, f"encrypted, and its encryption could not be read to "
                            f"check what its streams inflate to ({type(exc).__name__}); "
                            "save an unencrypted copy") from None
    decipher = document.decipher
    if decipher is None:
        return None
    return lambda number, generation, raw: decipher(number, generation, raw, None)


def _encrypted_bytes(data: bytes, decrypt: Decrypt, limit: int, total: int,
                     source: str) -> int:
    """``total`` plus what the encrypted Flate streams inflate to, each decrypted whole
    (its ``/Length`` bytes)."""
    for m in _STREAM.finditer(data):
        header, head = _head(data, m.start())
        if b"/Image" in head or b"/XRef" in head or b"Flate" not in head:
            continue  # images are never decoded; cross-reference streams are not encrypted
        length = _LENGTH.search(head)
        if header is None or length is None:
            raise DocumentError(source, "encrypted, and a stream's object or length could "
                                "not be found to check what it inflates to; save an "
                                "unencrypted copy")
        size = int(length.group(1))
        if length.group(2) is not None:  # an indirect length: its own object holds it
            held = re.search(rb"(?<!\d)%s\s+%s\s+obj\s*(\d+)\s*endobj" % (
                length.group(1), length.group(2)), data)
            if held is None:
                raise DocumentError(source, "encrypted, and a stream's length is kept where "
                                    "it cannot be read to check what the stream inflates "
                                    "to; save an unencrypted copy")
            size = int(held.group(1))
        raw = data[m.end():m.end() + size]
        plain = decrypt(int(header.group(1)), int(header.group(2)), raw)
        total = _inflated(plain, 0, limit, total)
        if total > limit:
            break
    return total
