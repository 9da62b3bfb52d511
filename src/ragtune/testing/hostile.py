"""Hostile and broken files for fuzzing ingest, and a way to run a command under a time
limit while measuring its peak memory.

:func:`make_hostile` writes them into a folder and says, for each, what ingest must do:
report it with a reason containing the given words, or ingest it (``None``), or either
(:data:`EITHER`: a damaged file that the parser may partly read).

Example::

    expected = make_hostile(tmp_path / "docs", tmp_path / "outside", huge_mb=4)
    run = run_measured(["ragtune", "ingest", "--kb", "kb", "docs", "--json"], timeout=60)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

EITHER = "(ingested or reported)"

_WORDS = ("the river rises in the northern hills and runs south past mills villages and "
          "a stone bridge before it reaches the harbour where boats wait for the tide").split()


def _prose(rnd: random.Random, chars: int, sentence_end: str = ". ") -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(6, 20)))
        out.append(sentence.capitalize() + sentence_end)
        size += len(out[-1])
    return "".join(out)


# the standard security handler's padding (PDF 1.7, 7.6.3.3, algorithm 2)
_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def _rc4(key: bytes, data: bytes) -> bytes:
    """RC4, for test PDFs encrypted as PDF 1.1 to 1.3 did (revision 2, 40 bits)."""
    box = list(range(256))
    j = 0
    for i in range(256):
        j = (j + box[i] + key[i % len(key)]) % 256
        box[i], box[j] = box[j], box[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + box[i]) % 256
        box[i], box[j] = box[j], box[i]
        out.append(byte ^ box[(box[i] + box[j]) % 256])
    return bytes(out)


def pdf_bytes(text: str, *, padding: int = 0, encrypted: bool = False) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica; its content stream is Flate-compressed
    and, with ``padding``, followed by that many spaces (which compress to almost nothing:
    a PDF that inflates far beyond its size). ``encrypted``: with the standard security
    handler and an empty user password (PDFium opens it without asking)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = zlib.compress(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1")
                            + b" " * padding, 9)
    trailer = b""
    if encrypted:
        owner, document_id, permissions = bytes(range(32)), bytes(range(16, 32)), -4
        key = hashlib.md5(_PAD + owner + struct.pack("<i", permissions)
                          + document_id).digest()[:5]
        content = _rc4(hashlib.md5(key + struct.pack("<I", 4)[:3] + b"\0\0").digest()[:10],
                       content)  # object 4, generation 0
        trailer = (b" /Encrypt << /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >> "
                   b"/ID [<%s> <%s>]" % (owner.hex().encode(), _rc4(key, _PAD).hex().encode(),
                                         permissions, document_id.hex().encode(),
                                         document_id.hex().encode()))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, trailer, xref)
    return bytes(out)


def _docx(path: Path, padding: int) -> None:
    """A real .docx (python-docx) whose document part carries ``padding`` spaces of XML
    whitespace: it compresses to almost nothing and unpacks to ``padding`` bytes."""
    import io

    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("The ferry leaves the harbour at nine.")
    document.save(buffer)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "word/document.xml":
                data = data.replace(b"<w:body>", b"<w:body>" + b" " * padding)
            z.writestr(item.filename, data)


def _lying_docx(path: Path, real: int) -> None:
    """A .docx whose zip directory says its document part is 1 KB while it inflates to
    ``real`` bytes (the size check reads the directory)."""
    _docx(path, real)
    data = bytearray(path.read_bytes())
    name = b"word/document.xml"
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = data.find(signature)
        while at != -1:
            if data[at + name_at:at + name_at + len(name)] == name:
                data[at + size_at:at + size_at + 4] = struct.pack("<I", 1024)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def make_hostile(folder: Path, outside: Path, *, huge_mb: float = 20,
                 bomb_mb: int = 200) -> dict[str, str | None]:
    """Write the hostile files into ``folder`` (and a target for links into ``outside``);
    returns, by name, the words ingest's reason must contain, ``None`` for a file that must
    be ingested, or :data:`EITHER`. ``huge_mb``: the size of the files with one huge line;
    ``bomb_mb``: what the zip and PDF bombs inflate to (over the 64 MB allowed)."""
    rnd = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}

    def link(name: str, target: str | Path, reason: str | None) -> None:
        (folder / name).symlink_to(target)
        expected[name] = reason

    os.mkfifo(folder / "pipe.txt")
    expected["pipe.txt"] = "named pipe"
    link("zero.txt", "/dev/zero", "outside the folder")
    link("random.md", "/dev/urandom", "outside the folder")
    (outside / "secret.txt").write_text("A secret that lives outside the folder.")
    link("secret.txt", outside / "secret.txt", "outside the folder")
    link("loop-a.txt", folder / "loop-b.txt", "loop of symbolic links")
    link("loop-b.txt", folder / "loop-a.txt", "loop of symbolic links")
    link("gone.txt", folder / "never-there.txt", "broken symbolic link")
    link("self", folder, "not followed")

    _docx(folder / "good.docx", 0)
    expected["good.docx"] = None
    _docx(folder / "bomb.docx", bomb_mb * 1024 * 1024)
    expected["bomb.docx"] = "expands to"
    _lying_docx(folder / "liar.docx", bomb_mb * 1024 * 1024)
    expected["liar.docx"] = "not a readable .docx"
    (folder / "notzip.docx").write_bytes(b"PK\x03\x04" + os.urandom(2000))
    expected["notzip.docx"] = "not a readable .docx"

    pdf = pdf_bytes("The harbour master keeps the tide tables in the stone tower.")
    (folder / "good.pdf").write_bytes(pdf)
    expected["good.pdf"] = None
    (folder / "truncated.pdf").write_bytes(pdf[: len(pdf) // 2])
    expected["truncated.pdf"] = EITHER
    (folder / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(4000))
    expected["garbage.pdf"] = "not a readable PDF"
    (folder / "bomb.pdf").write_bytes(pdf_bytes("Inflated.", padding=bomb_mb * 1024 * 1024))
    expected["bomb.pdf"] = "inflate to over"
    # encrypted with an empty password: PDFium opens it, its streams are ciphertext
    (folder / "locked-bomb.pdf").write_bytes(pdf_bytes("Inflated.", encrypted=True,
                                                        padding=bomb_mb * 1024 * 1024))
    expected["locked-bomb.pdf"] = "inflate to over"
    (folder / "locked.pdf").write_bytes(pdf_bytes("The lock keeper opens the gates at dawn.",
                                                  encrypted=True))
    expected["locked.pdf"] = None

    huge = int(huge_mb * 1e6)
    (folder / "huge-line.txt").write_text(_prose(rnd, huge))  # no newline at all
    expected["huge-line.txt"] = None
    (folder / "huge-line.md").write_text("# One line\n" + _prose(rnd, huge // 4))
    expected["huge-line.md"] = None
    (folder / "no-spaces.txt").write_text("x" * (huge // 4))
    expected["no-spaces.txt"] = None

    (folder / "cp1252.txt").write_bytes("Café crème brûlée, naïve façade. Ökonomie.".encode(
        "cp1252"))
    expected["cp1252.txt"] = None
    (folder / "odd-utf16.txt").write_bytes(b"\xff\xfeh\x00i\x00\x00")
    expected["odd-utf16.txt"] = "not valid UTF-16"
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    expected["binary.txt"] = "binary"
    (folder / "nul-bytes.txt").write_bytes(b"Text with\x00 NUL\x00 bytes inside it.")
    expected["nul-bytes.txt"] = None
    for name in ("empty.txt", "empty.md", "empty.html", "empty.docx", "empty.pdf"):
        (folder / name).write_bytes(b"")
    expected.update({"empty.txt": "no text", "empty.md": "no text", "empty.html": EITHER,
                     "empty.docx": "not a readable .docx", "empty.pdf": "not a readable PDF"})
    (folder / "blank.txt").write_text(" \n\t\n\u3000\n")
    expected["blank.txt"] = "no text"
    (folder / "bad.json").write_text('{"text": "unterminated')
    expected["bad.json"] = "invalid JSON"
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    expected["deep.json"] = "nested too deeply"
    (folder / "bad.jsonl").write_text('{"text": "fine"}\n{broken\n')
    expected["bad.jsonl"] = "line 2"
    (folder / "deep.html").write_text("<div>" * 20_000 + "Deep text." + "</div>" * 20_000)
    expected["deep.html"] = None
    return expected


@dataclass
class Measured:
    """A finished (or stopped) command: exit status, output, peak memory, time."""

    returncode: int | None  # None: stopped at the time limit
    stdout: str
    stderr: str
    peak_rss_mb: float  # the most resident memory it (and the children it waited for) held
    seconds: float

    def json(self) -> object:
        return json.loads(self.stdout)


# A small process starts the command and reports its peak memory: on Linux a child's
# ``ru_maxrss`` starts from the memory of the process it was forked from and survives
# ``exec``, so measured straight from a large test process it would read that process's size.
_LAUNCH = """import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, raw, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(raw) % 256)
"""


def run_measured(command: list[str], *, timeout: float, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> Measured:
    """Run ``command``, stop it after ``timeout`` seconds, and measure its peak resident
    memory from the kernel's own account (``wait4``), not by sampling."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        peak = Path(tempfile.mkdtemp()) / "maxrss"
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(peak), *command],
                                stdout=out, stderr=err, env=env, cwd=cwd,
                                start_new_session=True)
        status: int | None = None
        while True:
            pid, raw, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(raw)
                break
            if time.perf_counter() - start > timeout:
                os.killpg(proc.pid, 9)  # the launcher and the command
                pid, raw, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = status if status is not None else -9  # already reaped
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        kib = int(peak.read_text()) if peak.exists() else usage.ru_maxrss  # killed: its own
        return Measured(status, out.read().decode(errors="replace"),
                        err.read().decode(errors="replace"), kib / 1024, seconds)
