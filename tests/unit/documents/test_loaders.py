import json

import pytest

from ragtune.documents.loaders import load
from ragtune.errors import DocumentError


def test_text_utf8_and_gbk(tmp_path):
    (tmp_path / "a.txt").write_text("Hello  world.\r\n\r\n\r\nBye.", encoding="utf-8")
    text = "这是一个用GBK编码的中文文件，内容是关于知识库的。"
    (tmp_path / "b.txt").write_bytes(text.encode("gbk"))
    a = load(tmp_path / "a.txt")[0]
    assert a.text == "Hello world.\n\nBye."
    assert a.title == "a"
    b = load(tmp_path / "b.txt")[0]
    assert "中文文件" in b.text


def test_binary_named_txt_is_refused(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DocumentError, match="binary"):
        load(path)


def test_unsupported_suffix_lists_supported(tmp_path):
    path = tmp_path / "x.xyz"
    path.write_text("hi")
    with pytest.raises(DocumentError, match=r"unsupported file type '\.xyz'.*\.pdf"):
        load(path)


def test_markdown_headings_become_section_paths(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nIntro [link](http://x).\n\n## Install\n\nRun `make`.\n\n"
                    "```\n# not a heading\n```\n\n### Linux\n\nUse apt.\n\n## Use\n\nAsk.\n")
    doc = load(path)[0]
    assert doc.title == "Guide"
    headings = [s.heading for s in doc.sections]
    assert headings == ["Guide", "Guide › Install", "Guide › Install › Linux", "Guide › Use"]
    assert "Intro link." in doc.sections[0].text
    assert "# not a heading" in doc.sections[1].text
    assert doc.sections[2].line == 13


def test_html_strips_boilerplate_and_keeps_headings(tmp_path):
    path = tmp_path / "p.html"
    path.write_text("<html><head><title>Handbook</title><style>p{}</style></head><body>"
                    "<nav>Home | About</nav><h1>Leave</h1><p>You get <b>25 days</b>.</p>"
                    "<script>var x=1;</script><h2>Sick</h2><ul><li>Call in</li></ul>"
                    "<footer>(c) 2024</footer></body></html>")
    doc = load(path)[0]
    assert doc.title == "Handbook"
    assert "Home" not in doc.text and "var x" not in doc.text and "(c)" not in doc.text
    assert doc.sections[0].text == "You get 25 days."
    assert doc.sections[1].heading == "Leave › Sick"


def test_pdf_pages_are_one_based(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    for text in ["First page text.", "Second page says the budget is 42 euros."]:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.cell(text=text)
    path = tmp_path / "r.pdf"
    pdf.output(str(path))
    doc = load(path)[0]
    assert [s.page for s in doc.sections] == [1, 2]
    assert "42 euros" in doc.sections[1].text


def test_corrupt_pdf_names_the_file(tmp_path):
    path = tmp_path / "bad.pdf"
    path.write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(DocumentError) as err:
        load(path)
    assert "bad.pdf" in str(err.value) and "PDF" in str(err.value)


def test_docx_headings_and_tables(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Policy", level=1)
    d.add_paragraph("Vacation is 25 days.")
    d.add_heading("Table", level=2)
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Plan"
    table.rows[0].cells[1].text = "Gold"
    path = tmp_path / "p.docx"
    d.save(str(path))
    doc = load(path)[0]
    assert doc.sections[0].heading == "Policy"
    assert doc.sections[1].heading == "Policy › Table"
    assert "Plan | Gold" in doc.sections[1].text


def test_jsonl_records_and_bad_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"_id": "1", "title": "T1", "text": "Alpha."}) + "\n\n"
                    + json.dumps({"title": "T2", "text": "Beta."}) + "\n")
    docs = load(path)
    assert [(d.title, d.text, d.record, d.sections[0].line) for d in docs] == [
        ("T1", "Alpha.", 0, 1), ("T2", "Beta.", 1, 3)]
    path.write_text(json.dumps({"text": "ok"}) + "\n{broken\n")
    with pytest.raises(DocumentError, match="c.jsonl:2.*line 2"):
        load(path)


def test_json_shapes(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"a": {"original_text": "Clause one."},
                                "b": {"original_text": "Clause two."}}))
    assert [d.text for d in load(path)] == ["Clause one.", "Clause two."]
    path.write_text(json.dumps([{"name": "n", "body": "B"}, "plain string"]))
    assert [d.text for d in load(path)] == ["B", "plain string"]
    path.write_text("{not json")
    with pytest.raises(DocumentError, match="invalid JSON at line 1"):
        load(path)


def test_markdown_hard_wraps_are_joined_but_lists_kept(tmp_path):
    path = tmp_path / "w.md"
    path.write_text("A paragraph that is\nwrapped over\nthree lines.\n\n- item one\n- item two\n"
                    "\n| a | b |\n|---|---|\n")
    text = load(path)[0].text
    assert "A paragraph that is wrapped over three lines." in text
    assert "- item one\n- item two" in text and "| a | b |\n|---|---|" in text
