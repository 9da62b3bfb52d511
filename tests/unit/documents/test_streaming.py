"""Large plain-text files are chunked as they are read: the same chunks as read whole."""

import json
import random

import pytest

from ragtune.documents import streaming
from ragtune.documents.chunking import chunk_document
from ragtune.documents.loaders import load_text
from ragtune.documents.streaming import cleaned_blocks, stream_chunks, windows
from ragtune.errors import DocumentError
from ragtune.testing import FakeEmbedder

COUNT = FakeEmbedder().count_tokens  # words

SENTENCES = [
    "The river rises in the northern hills and reaches the sea after 300 km.",
    "Dr. Smith measured it in 1998, e.g. at the old bridge.",
    "Its water is cold!",
    "Is it safe to swim?",
    "Café owners along the bank sell crêpes and naïve postcards.",
    "长江是中国最长的河流。它流经十一个省份！",
    "J. Smith wrote: \"the flood came at night.\"",
    "Word " * 70 + "end.",  # longer than a chunk: cut into words
]


def _text(rnd: random.Random, paragraphs: int, newline: str) -> str:
    parts = []
    for _ in range(paragraphs):
        lines = [" ".join(rnd.choice(SENTENCES) for _ in range(rnd.randint(1, 6)))
                 for _ in range(rnd.randint(1, 3))]
        parts.append(newline.join(lines))
    breaks = [newline * 2, newline * 3, newline + "  " + newline, newline + "\t" + newline * 2]
    return "".join(p + rnd.choice(breaks) for p in parts)


def _both(path, **sizes):
    whole = chunk_document(load_text(path, str(path))[0], COUNT, 40, 10)
    streamed = list(stream_chunks(path, str(path), COUNT, 40, 10, **sizes))
    return whole, streamed


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("block,window", [(5, 40), (64, 300), (1000, 1500)])
def test_streamed_chunks_are_the_whole_files_chunks(tmp_path, newline, block, window):
    rnd = random.Random(block + len(newline))
    path = tmp_path / "river.txt"
    path.write_bytes(("\n\n " + _text(rnd, 60, newline)).encode())
    assert path.stat().st_size > 20 * window  # many blocks and windows
    whole, streamed = _both(path, block=block, window=window)
    assert len(whole) > 30
    assert streamed == whole  # text, offsets, ids, context, line


def test_a_character_or_crlf_cut_by_a_block_edge_is_read_whole(tmp_path):
    path = tmp_path / "edge.txt"
    text = "Ein schönes Café.\r\n\r\n长江很长。\r\nA third line.\r\n\r\nThe end."
    data = ("\ufeff" + text).encode()
    path.write_bytes(data)
    cuts = [i for i in range(1, len(data)) if (data[i] & 0xC0) == 0x80 or data[i:i + 1] == b"\n"]
    assert len(cuts) > 10  # inside "ö", "é", the CJK characters and every CR LF
    whole = chunk_document(load_text(path, str(path))[0], COUNT, 3, 1)
    for block in sorted({c for c in cuts}):
        assert list(stream_chunks(path, str(path), COUNT, 3, 1, block=block, window=8)) == whole


def test_other_encodings_stream_like_they_load(tmp_path):
    text = _text(random.Random(3), 30, "\n").replace("长江是中国最长的河流。它流经十一个省份！", "")
    for name, data in [("latin.txt", text.encode("cp1252")),
                       ("utf16.txt", text.encode("utf-16")),
                       ("gbk.txt", ("长江是中国最长的河流。\n\n" * 200).encode("gbk"))]:
        path = tmp_path / name
        path.write_bytes(data)
        whole, streamed = _both(path, block=333, window=500)
        assert streamed == whole and whole, name


def test_a_bad_byte_late_in_the_file_fails_before_any_chunk(tmp_path):
    path = tmp_path / "late.txt"
    path.write_bytes(b"\xff\xfe" + "Fine text.\n\n".encode("utf-16-le") * 5000 + b"\x00\xd8")
    with pytest.raises(DocumentError, match=r"not valid UTF-16 \(byte 1200"):
        next(stream_chunks(path, str(path), COUNT, 40, 10, block=4096))


def test_a_paragraph_over_the_window_bound_is_cut_and_memory_stays_bounded(tmp_path):
    words = " ".join(f"w{i}" for i in range(40_000))  # one 250 KB line, no newline
    pieces = list(cleaned_blocks([words[i:i + 1000] for i in range(0, len(words), 1000)],
                                 most=8_000))
    assert max(map(len, pieces)) <= 2 * 8_000 and "".join(pieces) == words  # no words glued
    cut = list(windows(pieces, size=2_000, most=8_000))
    assert max(len(t) for _, t in cut) <= 2 * 8_000
    assert "".join(t for _, t in cut) == words
    path = tmp_path / "line.txt"
    path.write_text(words)
    chunks = list(stream_chunks(path, str(path), COUNT, 40, 10, block=1000, window=2_000,
                                most=8_000))
    assert all(len(c.text.split()) <= 40 for c in chunks)
    assert {w for c in chunks for w in c.text.split()} == set(words.split())
    assert all(words[c.start:c.end] == c.text for c in chunks)


def test_only_large_text_markdown_and_json_lines_files_stream(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "STREAM_FROM_BYTES", 100)
    for name, size in [("big.txt", 101), ("small.txt", 100), ("big.md", 500),
                       ("big.jsonl", 500), ("big.json", 500), ("big.html", 500)]:
        (tmp_path / name).write_bytes(b"x" * size)
    assert streaming.streams(tmp_path / "big.txt")
    assert not streaming.streams(tmp_path / "small.txt")
    assert streaming.streams(tmp_path / "big.md")
    assert streaming.streams(tmp_path / "big.jsonl")
    assert not streaming.streams(tmp_path / "big.json")  # one JSON value: parsed whole
    assert not streaming.streams(tmp_path / "big.html")
    assert not streaming.streams(tmp_path / "missing.txt")


def _markdown(rnd: random.Random, newline: str) -> str:
    out = [f"---{newline}title: \"Rivers\"{newline}tags: [a, b]{newline}---{newline}"]
    for i in range(40):
        if rnd.random() < 0.4:
            out.append(f"{'#' * rnd.randint(1, 3)} Heading {i}{newline}{newline}")
        if rnd.random() < 0.15:
            out.append(f"```{newline}# not a heading {i}{newline}code line{newline}```{newline}")
        if rnd.random() < 0.2:
            out.append(f"- item with a [link](http://x/{i}){newline}- second item{newline}")
        out.append(_text(rnd, rnd.randint(1, 3), newline))
    return "".join(out)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("block", [7, 256, 100_000])
def test_streamed_markdown_gives_the_whole_files_chunks(tmp_path, newline, block):
    from ragtune.documents.markdown import load_markdown

    path = tmp_path / "rivers.md"
    path.write_bytes(_markdown(random.Random(block), newline).encode())
    whole = chunk_document(load_markdown(path, str(path))[0], COUNT, 40, 10)
    streamed = list(stream_chunks(path, str(path), COUNT, 40, 10, block=block))
    assert len(whole) > 30 and len({c.heading for c in whole}) > 3
    assert whole[0].title == "Rivers"
    assert streamed == whole  # text, offsets, ids, headings, lines, title


def test_a_markdown_section_over_the_bound_goes_on_in_a_new_section(monkeypatch):
    from ragtune.documents import markdown

    monkeypatch.setattr(markdown, "MAX_SECTION_CHARS", 1_000)
    paragraph = " ".join(["The mill stands by the weir."] * 10)  # 289 characters
    lines = ["# Mill", ""] + [paragraph, ""] * 20 + ["```", "x", "", "y", "```"]
    parts = list(markdown.markdown_parts(lines))
    assert len(parts) > 4 and all(len(text) < 1_000 + 2 * len(paragraph) for text, *_ in parts)
    assert {heading for _, _, heading, _ in parts} == {"Mill"}
    assert "".join(text for text, *_ in parts).count("weir") == 200  # nothing lost
    assert parts[-1][0].endswith("```")  # a code block is never cut


def test_streamed_json_lines_give_the_whole_files_records(tmp_path):
    from ragtune.documents.json_records import load_jsonl

    rnd = random.Random(3)
    lines = []
    for i in range(300):
        if i % 37 == 0:
            lines.append("")  # blank lines are skipped, their numbers counted
        record = {"title": f"Note {i}", "text": _text(rnd, rnd.randint(1, 4), "\n")}
        lines.append(json.dumps(record, ensure_ascii=i % 2 == 0))
        if i % 50 == 0:
            lines.append(json.dumps({"id": i}))  # no text: no document
    path = tmp_path / "notes.jsonl"
    path.write_text("\r\n".join(lines), encoding="utf-8")
    whole = [c for d in load_jsonl(path, str(path)) for c in chunk_document(d, COUNT, 40, 10)]
    streamed = list(stream_chunks(path, str(path), COUNT, 40, 10, block=333))
    assert len({c.record for c in whole}) > 290
    assert streamed == whole


def test_a_bad_json_line_late_in_a_streamed_file_names_its_line(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("\n".join([json.dumps({"text": f"Note {i}."}) for i in range(500)]
                              + ["{not json"]))
    chunks = stream_chunks(path, str(path), COUNT, 40, 10, block=512)
    with pytest.raises(DocumentError, match=r"notes.jsonl:501.*line 501"):
        list(chunks)


def test_lines_cut_by_block_edges_are_whole():
    text = "one\r\ntwo\rthree\n\nfour\u2028five"
    for size in range(1, 8):
        blocks = [text[i:i + size] for i in range(0, len(text), size)]
        assert list(streaming.decoded_lines(blocks)) == text.splitlines()


def test_a_word_longer_than_a_chunk_is_cut_into_slices():
    from ragtune.types import Document

    def count(texts):  # about four characters a token, as for English
        return [max(1, len(t) // 4) for t in texts]

    text = "A short start. " + "x" * 5000 + " and an end."
    chunks = chunk_document(Document.from_text("blob.txt", text), count, 200, 40)
    assert max(len(c.text) for c in chunks) <= 4 * 200  # not one 5,000-character chunk
    assert "".join(c.text for c in chunks if "x" in c.text).count("x") >= 5000
