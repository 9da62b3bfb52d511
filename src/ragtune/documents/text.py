"""Reading bytes as text (encoding detection) and cleaning extracted text."""

from __future__ import annotations

import re
import stat
import unicodedata
from pathlib import Path

from ragtune.errors import DocumentError

MAX_FILE_BYTES = 200 * 1024 * 1024  # larger files are refused with a clear error

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_TRAILING = re.compile(r" +\n")
_BLANKS = re.compile(r"\n{3,}")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
# among encodings that fit the bytes equally well, the most common ones win
_PREFERRED = ("cp1252", "gb18030", "cp1251", "shift_jis", "euc_kr", "big5", "latin_1")
_LATIN_SINGLE_BYTE = ("cp125", "iso8859", "mac_", "latin")


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refusing unreadable, empty-named or oversized files clearly."""
    try:
        info = path.stat()
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block, a device never ends
        kind = ("a named pipe" if stat.S_ISFIFO(info.st_mode) else
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
        raise DocumentError(str(path), f"{kind}, not a regular file: only files are read")
    if info.st_size > limit:
        raise DocumentError(
            str(path), f"file is {info.st_size / 1e6:.1f} MB, over the {limit / 1e6:.0f} MB "
            "limit; split it or raise the limit"
        )
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)  # the file may have grown since it was measured
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise DocumentError(str(path), f"file grew over the {limit / 1e6:.0f} MB limit while "
                            "it was read; split it or raise the limit")
    return data


def decode(data: bytes, source: str) -> str:
    """Decode ``data``: UTF-8 (with or without BOM), UTF-16 by BOM, else detected.

    Binary data (NUL bytes outside UTF-16) is refused rather than indexed as garbage.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(source, f"starts with a UTF-16 byte-order mark but is not valid "
                                f"UTF-16 (byte {exc.start}: {exc.reason}); re-save it as "
                                "UTF-8") from None
    try:
        return data.decode("utf-8-sig")
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
            return str(data.decode(encoding))
    # Short Western texts fit several single-byte Latin code pages equally well; Windows-1252
    # is by far the most common of them (and what browsers read "latin-1" as).
    if len(tied) > 1 and all(e.startswith(_LATIN_SINGLE_BYTE) for e in tied[:2]):
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    return str(best)


def clean(text: str, *, pdf: bool = False) -> str:
    """Normalise Unicode (NFC), whitespace and line ends; drop control characters.

    Paragraph breaks (blank lines) are kept since chunking splits on them. With ``pdf``,
    words hyphenated across line ends are joined.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    if pdf:
        text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()
