"""Reading bytes as text (encoding detection) and cleaning extracted text."""

from __future__ import annotations

import codecs
import re
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from ragtune.errors import DocumentError

MAX_FILE_BYTES = 200 * 1024 * 1024  # larger files are refused with a clear error
BLOCK_BYTES = 1024 * 1024  # what read_blocks reads at a time

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_TRAILING = re.compile(r" +\n")
_BLANKS = re.compile(r"\n{3,}")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
# among encodings that fit the bytes equally well, the most common ones win
_PREFERRED = ("cp1252", "gb18030", "cp1251", "shift_jis", "euc_kr", "big5", "latin_1")
_LATIN_SINGLE_BYTE = ("cp125", "iso8859", "mac_", "latin")


def _check_file(path: Path, limit: int) -> None:
    """Refuse what is not a regular file (a FIFO would block, a device never ends) or is
    over ``limit`` bytes."""
    try:
        info = path.stat()
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a named pipe" if stat.S_ISFIFO(info.st_mode) else
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
        raise DocumentError(str(path), f"{kind}, not a regular file: only files are read")
    if info.st_size > limit:
        raise DocumentError(
            str(path), f"file is {info.st_size / 1e6:.1f} MB, over the {limit / 1e6:.0f} MB "
            "limit; split it or raise the limit"
        )


def _grew(path: Path, limit: int) -> DocumentError:
    return DocumentError(str(path), f"file grew over the {limit / 1e6:.0f} MB limit while "
                         "it was read; split it or raise the limit")


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refusing unreadable, empty-named or oversized files clearly."""
    _check_file(path, limit)
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)  # the file may have grown since it was measured
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise _grew(path, limit)
    return data


def read_blocks(path: Path, limit: int = MAX_FILE_BYTES,
                block: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The file's bytes in blocks of ``block``, with the checks of :func:`read_bytes`."""
    _check_file(path, limit)
    total = 0
    try:
        with path.open("rb") as f:
            while data := f.read(block):
                total += len(data)
                if total > limit:
                    raise _grew(path, limit)
                yield data
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read: {exc.strerror or exc}") from None


def detect_encoding(data: bytes, source: str, *, partial: bool = False) -> str:
    """The codec :func:`decode` reads ``data`` with: UTF-16 by BOM, UTF-8 (with or without
    BOM), else detected. ``partial``: ``data`` is the start of a longer file, so a character
    cut at its end is not an error.

    Binary data (NUL bytes outside UTF-16) is refused rather than indexed as garbage.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=not partial)
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:8192]:
        raise DocumentError(source, "looks like a binary file, not text")
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise DocumentError(source, "could not detect the text encoding; save it as UTF-8")
    best = matches[0]
    tied = [m.encoding for m in matches
            if m.chaos <= best.chaos + 0.01 and m.coherence >= best.coherence - 0.01]
    for encoding in _PREFERRED:
        if encoding in tied:
            return encoding
    # Short Western texts fit several single-byte Latin code pages equally well; Windows-1252
    # is by far the most common of them (and what browsers read "latin-1" as).
    if len(tied) > 1 and all(e.startswith(_LATIN_SINGLE_BYTE) for e in tied[:2]):
        try:
            codecs.getincrementaldecoder("cp1252")().decode(data, final=not partial)
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return str(best.encoding)


def undecodable(source: str, encoding: str, exc: UnicodeDecodeError,
                offset: int = 0) -> DocumentError:
    """The error for bytes that are not valid in the encoding the file was read with."""
    if encoding == "utf-16":
        return DocumentError(source, f"starts with a UTF-16 byte-order mark but is not valid "
                             f"UTF-16 (byte {offset + exc.start}: {exc.reason}); re-save it "
                             "as UTF-8")
    return DocumentError(source, f"read as {encoding}, but byte {offset + exc.start} is not "
                         f"valid {encoding} ({exc.reason}); re-save it as UTF-8")


def decode(data: bytes, source: str) -> str:
    """Decode ``data`` with the encoding :func:`detect_encoding` finds."""
    encoding = detect_encoding(data, source)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise undecodable(source, encoding, exc) from None


def clean_lines(text: str, *, pdf: bool = False) -> str:
    """:func:`clean` without its final strip: text cut after a line end that a word
    character follows cleans piece by piece to the same text as whole."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    if pdf:
        text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n"))


def clean(text: str, *, pdf: bool = False) -> str:
    """Normalise Unicode (NFC), whitespace and line ends; drop control characters.

    Paragraph breaks (blank lines) are kept since chunking splits on them. With ``pdf``,
    words hyphenated across line ends are joined.
    """
    return clean_lines(text, pdf=pdf).strip()
