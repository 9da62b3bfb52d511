"""The three real SEC 10-Q filings (when the shared datasets are present)."""

from pathlib import Path

import pytest

from ragtune import KnowledgeBase
from ragtune.documents.text import clean
from tests.conftest import dataset


def page_texts(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return [clean(pdf[i].get_textpage().get_text_range(), pdf=True) for i in range(len(pdf))]
    finally:
        pdf.close()


@pytest.fixture(scope="module")
def sec_kb(tmp_path_factory, embedder, generator):
    folder = dataset("sec10q_pdfs")
    base = KnowledgeBase.create(tmp_path_factory.mktemp("sec") / "kb", embedder=embedder,
                                generator=generator)
    report = base.ingest([folder])
    assert report.exit_code == 0 and len(report.added) == 3
    return base, folder


@pytest.mark.parametrize("question, company", [
    ("What were Apple's total net sales in the third quarter of 2022?", "AAPL"),
    ("How much revenue did NVIDIA report for its Data Center segment?", "NVDA"),
    ("What was Microsoft's revenue from Azure and other cloud services?", "MSFT"),
])
def test_answers_cite_pages_that_hold_the_cited_text(sec_kb, question, company):
    kb, folder = sec_kb
    answer = kb.ask(question)
    assert answer.citations, answer.text
    for citation in answer.citations:
        chunk = citation.chunk
        assert chunk.page is not None and chunk.page >= 1
        pages = page_texts(Path(chunk.source))
        if chunk.kind == "table":  # rows as Markdown: each cell is on that page
            cells = [c.strip() for line in chunk.text.split("\n")
                     for c in line.strip("| ").split(" | ")[1:] if c.strip()]
            page = (pages[chunk.page - 1].replace("$ ", "$").replace(" )", ")")
                    .replace(" %", "%"))  # the cells join "$ 5", "(5 )", "5 %"
            assert cells and all(c in page for c in cells), (
                f"{Path(chunk.source).name} page {chunk.page} does not hold the cited cells")
            continue
        assert chunk.text in pages[chunk.page - 1], (
            f"{Path(chunk.source).name} page {chunk.page} does not hold the cited text")
    top = kb.search(question, k=3)
    assert company in Path(top[0].chunk.source).name


def test_the_income_statement_row_is_found_with_its_columns(sec_kb):
    kb, _ = sec_kb
    hits = kb.search("Apple's total net sales for the three months ended June 25, 2022", k=5)
    rows = [h.chunk for h in hits if h.chunk.kind == "table" and "82,959" in h.chunk.text]
    assert rows, [h.chunk.text[:80] for h in hits]
    assert "Three Months Ended June 25, 2022" in rows[0].context
    assert rows[0].title.startswith("Apple Inc. Form 10-Q")
