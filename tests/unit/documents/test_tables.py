"""Tables on PDF pages: found from PDFium's character boxes, chunked row-wise with their
header, shown to the model as tables."""

import pytest

from ragtune.documents.chunking import chunk_document
from ragtune.documents.loaders import load
from ragtune.documents.tables import filing_title, has_table_lines, split_context
from ragtune.rag.prompts import format_source

COVER = ("FORM 10-Q\nFor the quarterly period ended June 25, 2022\nCommission File Number: "
         "001-36743\nApple Inc.\n(Exact name of Registrant as specified in its charter)")


def words(texts):
    return [len(t.split()) for t in texts]


def statement_pdf(path, *, table=True):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.set_xy(10, 10)
    pdf.cell(190, 6, "Acme Corp. CONDENSED STATEMENTS OF OPERATIONS (In millions)", align="C")
    if table:
        for x, text in ((90, "Three Months Ended"), (150, "Nine Months Ended")):
            pdf.set_xy(x, 22)
            pdf.cell(50, 5, text, align="C")
        for n, text in enumerate(("June 25, 2022", "June 26, 2021") * 2):
            pdf.set_xy(90 + 30 * n, 28)
            pdf.cell(25, 5, text, align="R")
        rows = [("Net sales:", ()), ("Products", ("$ 63,355", "$ 63,948", "245,241", "232,309")),
                ("Services", ("19,604", "17,486", "58,941", "50,148")),
                ("Total net sales", ("82,959", "81,434", "304,182", "282,457")),
                ("Net income", ("19,442", "21,744", "(97)", "-"))]
        for r, (label, cells) in enumerate(rows):
            y = 36 + 6 * r
            pdf.set_xy(12, y)
            pdf.cell(60, 5, label)
            for n, cell in enumerate(cells):
                pdf.set_xy(90 + 30 * n, y)
                pdf.cell(25, 5, cell, align="R")
    pdf.set_xy(10, 80)
    pdf.multi_cell(190, 5, "Net sales grew in the quarter, led by services. " * 6)
    pdf.output(str(path))
    return path


def statement_kb(tmp_path, notes=False):
    """A knowledge base with the fake models over the statement PDF (and a text file)."""
    from ragtune import KnowledgeBase
    from ragtune.testing import FakeEmbedder, FakeGenerator

    folder = tmp_path / "filings"
    folder.mkdir()
    statement_pdf(folder / "q3.pdf")
    if notes:
        (folder / "notes.txt").write_text("Plain notes have no pages.")
    base = KnowledgeBase.create(tmp_path / "kb", embedder=FakeEmbedder(),
                                generator=FakeGenerator())
    base.ingest([folder])
    return base, folder


def test_a_statement_becomes_a_table_section_between_the_page_text(tmp_path):
    doc = load(statement_pdf(tmp_path / "q3.pdf"))[0]
    kinds = [s.kind for s in doc.sections]
    assert kinds == ["text", "table", "text"]
    table = doc.sections[1]
    assert table.page == 1 and "STATEMENTS OF OPERATIONS" in table.heading
    lines = table.text.split("\n")
    assert lines[0] == ("|  | Three Months Ended June 25, 2022 | Three Months Ended June 26, "
                        "2021 | Nine Months Ended June 25, 2022 | Nine Months Ended June 26, "
                        "2021 |")
    assert lines[2] == "| Net sales: Products | $63,355 | $63,948 | 245,241 | 232,309 |"
    assert lines[4] == "| Net sales: Total net sales | 82,959 | 81,434 | 304,182 | 282,457 |"
    assert lines[5] == "| Net income | 19,442 | 21,744 | (97) | - |"  # the group ended
    # the numbers are not left in the text around the table
    assert "82,959" not in doc.sections[0].text + doc.sections[2].text
    assert "led by services" in doc.sections[2].text


def test_table_chunks_are_whole_rows_with_the_header_in_their_context(tmp_path):
    doc = load(statement_pdf(tmp_path / "q3.pdf"))[0]
    chunks = [c for c in chunk_document(doc, words, max_tokens=40, overlap=5)
              if c.kind == "table"]
    assert len(chunks) >= 2  # 40 words hold the context and a few rows, not all
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert all(line.startswith("| ") and line.endswith(" |") for line in c.text.split("\n"))
        line, header = split_context(c.context)
        assert "STATEMENTS OF OPERATIONS" in line and "Nine Months Ended June 25, 2022" in header
    assert sum(c.text.count("\n") + 1 for c in chunks) == 4  # every row once
    total = next(c for c in chunks if "Total net sales" in c.text)
    shown = format_source(1, total).split("\n")
    assert shown[0].startswith("[1] q3.pdf, page 1 (")
    assert shown[1].startswith("|  | Three Months Ended") and shown[2] == "|---|---|---|---|---|"
    assert "| Net sales: Total net sales | 82,959 |" in "\n".join(shown[3:])


def test_a_page_without_a_table_is_read_as_before(tmp_path):
    import pypdfium2 as pdfium

    from ragtune.documents.text import clean

    path = statement_pdf(tmp_path / "prose.pdf", table=False)
    doc = load(path)[0]
    assert [s.kind for s in doc.sections] == ["text"]
    pdf = pdfium.PdfDocument(str(path))
    assert doc.sections[0].text == clean(pdf[0].get_textpage().get_text_range(), pdf=True)
    pdf.close()
    assert not has_table_lines(doc.text)


@pytest.mark.parametrize("cover, title", [
    (COVER, "Apple Inc. Form 10-Q, quarterly period ended June 25, 2022"),
    ("FORM 10-Q\nFor the Quarterly Period Ended March 31, 2023\nCommission File Number "
     "001-37845\nMICROSOFT CORPORATION\nWASHINGTON",
     "Microsoft Corporation Form 10-Q, quarterly period ended March 31, 2023"),
    ("Annual letter to shareholders\nFor the year ended 2022", None),
])
def test_filing_title_from_the_cover_page(cover, title):
    assert filing_title(cover) == title


def test_a_table_chunk_holds_at_most_max_rows_rows():
    from ragtune.documents.tables import chunk_table

    text = "\n".join(["|  | 2022 |", "|---|---|", *(f"| row {n} | {n} |" for n in range(5))])
    pieces = chunk_table(text, words, max_tokens=1000, context="T", max_rows=2)
    assert [text[s:e].count("\n") + 1 for s, e, _ in pieces] == [2, 2, 1]
    assert all(c == "T\n|  | 2022 |" for _, _, c in pieces)


# --- the real filings (skipped without the shared datasets) ------------------------------

def real_tables(name, page):
    import pypdfium2 as pdfium

    from ragtune.documents.tables import find_tables
    from tests.conftest import dataset

    pdf = pdfium.PdfDocument(str(dataset("sec10q_pdfs", name)))
    try:
        return find_tables(pdf[page - 1].get_textpage())
    finally:
        pdf.close()


@pytest.mark.parametrize("name", ["2023 Q1 NVDA.pdf", "2023 Q2 MSFT.pdf"])
def test_a_real_table_of_contents_is_not_a_table(name):
    from ragtune.documents.tables import Table, is_contents

    assert real_tables(name, 2) == []  # page 2: the filing's index, "Item 1. ... 3"
    shown = Table("INDEX", ("Page",), (("Item 1. Legal Proceedings", ("51",)),
                                       ("Item 1A. Risk Factors", ("51",)),
                                       ("Item 6. Exhibits", ("67",))))
    assert is_contents(shown)
    # one column of amounts, or numbers that go down, is a table
    assert not is_contents(Table("Debt", ("2023",), (("Notes", ("1,250",)),
                                                     ("Bonds", ("500",)), ("Total", ("1,750",)))))
    assert not is_contents(Table("Units", ("2023",), (("A", ("12",)), ("B", ("9",)),
                                                      ("C", ("21",)))))


@pytest.mark.parametrize("name, page, title, row, cells", [
    ("2022 Q3 AAPL.pdf", 4, "STATEMENTS OF OPERATIONS", "Total net sales",
     ("82,959", "81,434", "304,182", "282,457")),
    ("2022 Q3 AAPL.pdf", 6, "BALANCE SHEETS", "Total assets", ("$336,309", "$351,002")),
    ("2022 Q3 AAPL.pdf", 8, "CASH FLOWS", "Cash generated by operating activities",
     ("98,024", "83,838")),
    ("2023 Q2 MSFT.pdf", 3, "INCOME STATEMENTS", "Total revenue",
     ("52,857", "49,360", "155,726", "146,405")),
    ("2023 Q2 MSFT.pdf", 6, "CASH FLOWS", "Net cash from operations",
     ("24,441", "25,386", "58,812", "64,406")),
    ("2023 Q1 NVDA.pdf", 3, "STATEMENTS OF INCOME", "Revenue", ("$7,192", "$8,288")),
    ("2023 Q1 NVDA.pdf", 7, "CASH FLOWS", "Net cash provided by operating activities",
     ("2,911", "1,731")),
])
def test_the_real_statements_are_still_found(name, page, title, row, cells):
    tables = real_tables(name, page)
    found = [(t.title, label, got) for t in tables for label, got in t.rows
             if label.endswith(row)]
    assert any(title in t and got == cells for t, _, got in found), found
