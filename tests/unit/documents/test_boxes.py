"""Every chunk of a PDF keeps its page and the boxes of its lines, through the store and
the API."""

import pytest

from ragtune.documents.boxes import boxes_from_json, boxes_to_json, span_boxes
from ragtune.documents.chunking import chunk_document
from ragtune.documents.loaders import load
from tests.unit.documents.test_tables import statement_kb, statement_pdf, words

A4 = (210.0, 297.0)  # millimetres, as the test PDF places its text


def near(fraction, millimetres, whole, tolerance=0.02):
    return abs(fraction - millimetres / whole) < tolerance


def test_chunks_have_a_box_per_line_where_the_text_is(tmp_path):
    doc = load(statement_pdf(tmp_path / "q3.pdf"))[0]
    chunks = chunk_document(doc, words, max_tokens=400, overlap=10)
    for chunk in chunks:
        assert chunk.page == 1 and len(chunk.boxes) == chunk.text.count("\n") + 1
        assert all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in chunk.boxes)
    table = next(c for c in chunks if c.kind == "table" and "Total net sales" in c.text)
    total = table.text.split("\n").index(next(line for line in table.text.split("\n")
                                              if "Total net sales" in line))
    x0, y0, x1, y1 = table.boxes[total]
    # the row was written at 54 mm from the top, from 12 mm to the last column's 205 mm
    assert near(y0, 54, A4[1]) and near(x0, 12, A4[0]) and near(x1, 205, A4[0], 0.03)
    prose = chunks[-1]
    assert "led by services" in prose.text and near(prose.boxes[0][1], 80, A4[1])


def test_a_span_inside_a_line_gets_that_part_of_the_line():
    lines = ((0, 100, 0.1, 0.5, 0.9, 0.52),)
    assert span_boxes(lines, 50, 100) == ((0.5, 0.5, 0.9, 0.52),)
    assert span_boxes(lines, 100, 120) == ()
    assert boxes_from_json(boxes_to_json(((0.1, 0.2, 0.3, 0.4),))) == ((0.1, 0.2, 0.3, 0.4),)
    assert boxes_from_json(None) == () and boxes_from_json("") == ()


@pytest.fixture
def pdf_kb(tmp_path):
    return statement_kb(tmp_path)[0]


def test_kind_and_boxes_survive_the_store_and_reach_the_api(pdf_kb):
    from fastapi.testclient import TestClient

    from ragtune.serve import ServeSettings, create_app

    stored = list(pdf_kb.store.scan())
    assert {c.kind for c in stored} == {"text", "table"}
    assert all(c.boxes for c in stored)
    hit = next(h for h in pdf_kb.search("Total net sales", k=5) if h.chunk.kind == "table")
    assert hit.chunk.boxes == next(c.boxes for c in stored if c.id == hit.chunk.id)
    with TestClient(create_app(ServeSettings(kb=pdf_kb.path), kb=pdf_kb)) as client:
        data = client.post("/v1/retrieve", json={"query": "Total net sales", "k": 5}).json()
        out = next(h for h in data["data"] if h["id"] == hit.chunk.id)
        assert out["kind"] == "table" and out["boxes"] == [list(b) for b in hit.chunk.boxes]
        reply = client.post("/v1/chat/completions", json={
            "model": "rag", "messages": [{"role": "user", "content": "Total net sales?"}]})
        cited = reply.json()["citations"]
        assert cited and all(c["boxes"] and c["page"] == 1 for c in cited)
        for c in cited:  # rows of a table come with their header row, text without one
            assert ("Three Months Ended June 25, 2022" in c["header"]) if c["kind"] == "table" \
                else "header" not in c


def test_a_store_written_before_kind_and_boxes_reads_and_takes_new_chunks(tmp_path):
    import lancedb
    import numpy as np
    import pyarrow as pa

    from ragtune.index.lancedb_store import TABLE, LanceDBStore
    from ragtune.types import Chunk

    old = pa.schema([pa.field(n, t) for n, t in (
        ("id", pa.string()), ("source", pa.string()), ("text", pa.string()),
        ("context", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
        ("page", pa.int32()), ("heading", pa.string()), ("line", pa.int32()),
        ("title", pa.string()), ("record", pa.int32()), ("ingested_at", pa.float64()))]
        + [pa.field("vector", pa.list_(pa.float32(), 4))])
    db = lancedb.connect(str(tmp_path / "store"))
    db.create_table(TABLE, data=pa.table({
        **{n: [v] for n, v in (("id", "a"), ("source", "a.txt"), ("text", "old text"),
                               ("context", ""), ("start", 0), ("end", 8), ("page", None),
                               ("heading", None), ("line", 1), ("title", None),
                               ("record", None), ("ingested_at", 0.0))},
        "vector": pa.FixedSizeListArray.from_arrays(pa.array([1.0, 0, 0, 0], pa.float32()), 4)},
        schema=old))
    store = LanceDBStore(tmp_path / "store", dimension=4)
    assert store.get(["a"])["a"].kind == "text" and store.get(["a"])["a"].boxes == ()
    assert store.rows(["id", "kind", "boxes"]).column("kind").to_pylist() == ["text"]
    store.add([Chunk("b", "b.pdf", "new", 0, 3, page=2, kind="table",
                     boxes=((0.1, 0.2, 0.3, 0.4),))], np.eye(4, dtype=np.float32)[1:2])
    both = {c.id: c for c in store.scan()}
    assert both["a"].kind == "text" and both["b"].boxes == ((0.1, 0.2, 0.3, 0.4),)
