"""A large plain-text file is ingested as it is read: embedded and stored batch by batch,
with the chunks reading it whole gives, and nothing left behind when it fails."""

import functools
import random

import pytest

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings, IngestSettings
from ragtune.documents import streaming
from ragtune.index import ingest
from ragtune.testing import FakeEmbedder

WORDS = ("river bridge flood water cold north hills sea village mill stone boat fish "
         "harbour tide wind rain storm bank reed heron willow ferry lock weir").split()


def _settings() -> Settings:
    return Settings(embedder=EmbedderSettings(backend="fake", model="fake-hash"),
                    ingest=IngestSettings(batch_chunks=4))


def _write(path, paragraphs: int, seed: int = 0) -> None:
    rnd = random.Random(seed)
    text = "\n\n".join(
        " ".join(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 25))).capitalize()
                 + "." for _ in range(rnd.randint(1, 8)))
        for _ in range(paragraphs))
    path.write_text(text + "\n")


@pytest.fixture
def small_streams(monkeypatch):
    """Files over 1 KB stream, in 512-byte blocks and 2,000-character windows."""
    monkeypatch.setattr(streaming, "STREAM_FROM_BYTES", 1024)
    monkeypatch.setattr(ingest, "stream_chunks",
                        functools.partial(streaming.stream_chunks, block=512, window=2_000))


def _rows(kb):
    return sorted((c.id, c.text, c.start) for c in kb.store.scan())


def _kb_with_a_note(tmp_path):
    """A folder with one short note, its knowledge base, and the rows stored."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("A short note about the ferry timetable.")
    kb = KnowledgeBase.create(tmp_path / "kb", _settings())
    kb.ingest([docs])
    return docs, kb, _rows(kb)


def test_a_streamed_file_is_stored_in_batches_with_the_chunks_read_whole(
        tmp_path, monkeypatch, small_streams):
    docs = tmp_path / "docs"
    docs.mkdir()
    _write(docs / "river.txt", 120)
    (docs / "note.txt").write_text("A short note about the ferry timetable.")
    batches: list[int] = []
    embed = FakeEmbedder.embed
    monkeypatch.setattr(FakeEmbedder, "embed",
                        lambda self, texts: batches.append(len(texts)) or embed(self, texts))
    streamed = KnowledgeBase.create(tmp_path / "streamed", _settings())
    report = streamed.ingest([docs])
    assert report.failed == [] and len(report.added) == 2
    assert len(batches) > 10 and max(batches) <= 4  # batch_chunks at a time, never the file
    monkeypatch.setattr(streaming, "STREAM_FROM_BYTES", 1 << 30)  # read whole
    whole = KnowledgeBase.create(tmp_path / "whole", _settings())
    whole.ingest([docs])
    assert _rows(streamed) == _rows(whole)
    assert [r.chunk_ids for r in streamed.sources()] == [r.chunk_ids for r in whole.sources()]
    assert streamed.verify().ok
    assert streamed.search("ferry timetable", k=1)[0].chunk.source.endswith("note.txt")

    monkeypatch.setattr(streaming, "STREAM_FROM_BYTES", 1024)
    again = KnowledgeBase.open(streamed.path, _settings()).ingest([docs])
    assert len(again.unchanged) == 2 and again.chunks_embedded == 0
    with (docs / "river.txt").open("a") as f:
        f.write("\nA new closing paragraph about the heron at the weir.\n")
    edited = KnowledgeBase.open(streamed.path, _settings()).ingest([docs])
    assert len(edited.updated) == 1 and edited.chunks_embedded <= 2
    assert edited.chunks_reused == len(streamed.sources()[1].chunk_ids) - edited.chunks_embedded
    assert KnowledgeBase.open(streamed.path, _settings()).verify().ok


def test_a_file_that_changes_while_it_streams_leaves_nothing_behind(
        tmp_path, monkeypatch, small_streams):
    docs, kb, before = _kb_with_a_note(tmp_path)
    _write(docs / "river.txt", 60)
    digests = iter(["first", "second"])  # the file read at the end is not the one hashed
    monkeypatch.setattr(ingest, "digest", lambda path, limit: (next(digests), 1))
    report = KnowledgeBase.open(kb.path, _settings()).ingest([docs])
    assert [(p.rsplit("/", 1)[-1], r) for p, r in report.failed] == [
        ("river.txt", "changed while it was read; ingest it again")]
    assert report.chunks_embedded > 4  # some batches had been stored, then removed
    kb = KnowledgeBase.open(kb.path, _settings())
    assert _rows(kb) == before and kb.verify().ok


def test_large_markdown_and_json_lines_files_stream_into_the_same_rows(
        tmp_path, monkeypatch, small_streams):
    import json

    docs = tmp_path / "docs"
    docs.mkdir()
    rnd = random.Random(5)
    sections = []
    for i in range(30):
        sections.append(f"## Reach {i}\n\n" + " ".join(
            " ".join(rnd.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(6)))
    (docs / "river.md").write_text("# River\n\n" + "\n\n".join(sections) + "\n")
    (docs / "notes.jsonl").write_text("\n".join(
        json.dumps({"title": f"Note {i}", "text": " ".join(rnd.choice(WORDS) for _ in range(40))})
        for i in range(60)) + "\n")
    embedded: list[int] = []
    embed = FakeEmbedder.embed
    monkeypatch.setattr(FakeEmbedder, "embed",
                        lambda self, texts: embedded.append(len(texts)) or embed(self, texts))
    streamed = KnowledgeBase.create(tmp_path / "streamed", _settings())
    assert streamed.ingest([docs]).failed == []
    assert max(embedded) <= 4  # batch by batch, never a whole file
    monkeypatch.setattr(streaming, "STREAM_FROM_BYTES", 1 << 30)  # read whole
    whole = KnowledgeBase.create(tmp_path / "whole", _settings())
    whole.ingest([docs])
    assert _rows(streamed) == _rows(whole)
    records = {r.source.rsplit("/", 1)[-1]: r for r in streamed.sources()}
    assert records["notes.jsonl"].documents == 60 and records["river.md"].documents == 1
    assert [(r.chunk_ids, r.documents) for r in streamed.sources()] == [
        (r.chunk_ids, r.documents) for r in whole.sources()]
    hit = streamed.search("Reach 7", k=1)[0].chunk
    assert hit.heading == "River › Reach 7" and hit.title == "River"


def test_a_bad_line_late_in_a_streamed_json_lines_file_stores_nothing_of_it(
        tmp_path, monkeypatch, small_streams):
    import json

    docs, kb, before = _kb_with_a_note(tmp_path)
    rnd = random.Random(7)
    lines = [json.dumps({"text": " ".join(rnd.choice(WORDS) for _ in range(40))})
             for _ in range(80)]
    (docs / "notes.jsonl").write_text("\n".join([*lines, "{broken", *lines[:3]]) + "\n")
    report = KnowledgeBase.open(kb.path, _settings()).ingest([docs])
    assert report.chunks_embedded > 4  # batches were stored before the bad line, then removed
    assert [(p.rsplit("/", 1)[-1], r) for p, r in report.failed] == [
        ("notes.jsonl:81", "invalid JSON on line 81: Expecting property name enclosed in "
                           "double quotes; fix or remove that line")]
    kb = KnowledgeBase.open(kb.path, _settings())
    assert _rows(kb) == before and kb.verify().ok
