"""``GET /v1/chunks/{id}/page.png``: the page a PDF chunk comes from, to draw its boxes on."""

import struct
import zlib

import pytest
from fastapi.testclient import TestClient

from ragtune.serve import ServeSettings, create_app
from tests.serve.conftest import KEY
from tests.unit.documents.test_tables import statement_kb


@pytest.fixture
def pdf_client(tmp_path):
    base, folder = statement_kb(tmp_path, notes=True)
    with TestClient(create_app(ServeSettings(kb=base.path, api_keys=(KEY,)), kb=base)) as c:
        c.headers["Authorization"] = f"Bearer {KEY}"
        yield c, base, folder


def pixels(data):
    """Width, height and the rows of an 8-bit RGB PNG with filter 0 (what the server writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    at, idat = 8, b""
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"IDAT":
            idat += data[at + 8:at + 8 + size]
        at += 12 + size
    raw = zlib.decompress(idat)
    rows = [raw[y * (3 * width + 1) + 1:(y + 1) * (3 * width + 1)] for y in range(height)]
    return width, height, rows


def test_the_page_of_a_cited_row_is_rendered_with_ink_inside_its_box(pdf_client):
    client, base, _ = pdf_client
    chunk = next(c for c in base.store.scan() if c.kind == "table")
    r = client.get(f"/v1/chunks/{chunk.id}/page.png", params={"scale": 1})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    width, height, rows = pixels(r.content)
    assert abs(width - 595) <= 1 and abs(height - 842) <= 1  # A4 in points, a pixel a point
    x0, y0, x1, y1 = chunk.boxes[0]
    inside = [rows[y][3 * x] for y in range(int(y0 * height), int(y1 * height))
              for x in range(int(x0 * width), int(x1 * width))]
    margin = [rows[y][3 * x] for y in range(5, 25) for x in range(5, 25)]
    assert min(inside) < 100 and min(margin) == 255  # text in the box, blank paper outside


def test_pages_need_a_key_and_a_pdf_chunk(pdf_client):
    client, base, folder = pdf_client
    text = next(c for c in base.store.scan() if c.source.endswith(".txt"))
    pdf = next(c for c in base.store.scan() if c.source.endswith(".pdf"))
    assert client.get(f"/v1/chunks/{pdf.id}/page.png",
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get(f"/v1/chunks/{text.id}/page.png")
    assert r.status_code == 404 and "not from a PDF page" in r.json()["error"]["message"]
    r = client.get("/v1/chunks/nope/page.png")
    assert r.status_code == 404 and "chunk ids come with hits" in r.json()["error"]["message"]
    r = client.get(f"/v1/chunks/{pdf.id}/page.png", params={"scale": 10})
    assert r.status_code == 400 and "from 0.25 to 3" in r.json()["error"]["message"]
    (folder / "q3.pdf").unlink()
    r = client.get(f"/v1/chunks/{pdf.id}/page.png")
    assert r.status_code == 404 and "ingest it again" in r.json()["error"]["message"]
