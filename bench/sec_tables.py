"""Tables and follow-ups on the three shared SEC 10-Q filings, before and after.

Before: each PDF page read as plain text (``load_pdf(tables=False)``, titled by its file
name, as ragtune read PDFs before tables) and every question searched as asked. After:
tables found on the pages and chunked row-wise with their header row (``load_pdf``), and a
follow-up rewritten into a standalone question by the rules of ``ragtune.rag.followup``
(no generator, so the run is deterministic). Both sides are real knowledge bases with the
bundled embedder, searched hybrid (dense + BM25) as ``ragtune search`` does.

1. Cells with their row and column: for one statement per filing, the cells copied by
   hand (``bench/sec_questions.json``) are looked for in the chunks as the model is shown
   them (:func:`ragtune.rag.prompts.format_source`). A cell counts when one chunk shows it
   with its row label and its column's header: for a table, in that row under that header;
   for text, on one line with the row label while the chunk holds the header's words in
   order (generous to plain text: it need not say which number is under which header).
2. Top-5 retrieval hit rate on the 20 questions of ``bench/sec_questions.json`` (10 ask
   afresh, 10 follow one of those): a hit is a top-5 chunk of the right filing that holds
   the figure. Each of the four combinations of chunks and question handling is shown.
3. Load time (``load``, median of 5) of each filing and of a 40-page prose PDF without
   tables, before and after.
4. With ``--answers``: answer correctness with the bundled generator (``KnowledgeBase.ask``,
   the default pipeline): an answer is right when it states the figure. Before: questions as
   asked over page text; after: rewritten over tables.
5. The table finder against pdfplumber's (``pip install pdfplumber``; for this benchmark
   only), with its default settings (ruling lines) and with its text settings: tables found,
   seconds per filing (every page: opened, read and searched), and cells recovered on the
   hand-copied income statements, balance sheets and cash flow statements (``statements``
   and ``more_statements`` in ``bench/sec_questions.json``, 164 cells). A cell is recovered
   when a table on its page has a row whose label ends with the row's label (letters
   compared without spaces, as pdfplumber's text settings cut labels mid-word) and the
   value in the column's place: ragtune's cell under that column; for pdfplumber, more
   leniently, the row's amounts in order, whichever grid columns they fell in. "With
   header" also needs the column's header to be the reference's (pdfplumber names none).

Usage: python bench/sec_tables.py [--k 5] [--answers] [--extractors-only]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

from ragtune import KnowledgeBase
from ragtune.documents import loaders
from ragtune.documents.tables import find_tables, has_table_lines, split_context
from ragtune.rag.followup import rewrite
from ragtune.rag.prompts import format_source
from ragtune.types import Chunk, Document

from _common import ROOT, data_dir, require, write_result

QUESTIONS = ROOT / "bench" / "sec_questions.json"


LOAD_PDF = loaders.load_pdf


def text_only(path: Path, source: str) -> list[Document]:
    """PDFs as ragtune read them before tables: plain page text, titled by file name."""
    return [replace(d, title=path.stem) for d in LOAD_PDF(path, source, tables=False)]


def build(folder: Path, where: Path, before: bool) -> KnowledgeBase:
    # the registered .pdf loader is ragtune.documents.loaders:load_pdf, looked up per file
    with mock.patch.object(loaders, "load_pdf", text_only if before else LOAD_PDF):
        kb = KnowledgeBase.create(where)
        kb.ingest([folder])
    return kb


def _norm(text: str) -> str:
    return " ".join(text.replace("$", " ").split()).lower()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def landed(chunk: Chunk, label: str, column: str, value: str) -> bool:
    shown = format_source(1, chunk)
    if chunk.kind == "table":
        _, header = split_context(chunk.context)
        heads = [_norm(h) for h in _cells(header)]
        if _norm(column) not in heads:
            return False
        j = heads.index(_norm(column))
        for line in chunk.text.split("\n"):
            cells = _cells(line)
            if len(cells) > j and _norm(cells[0]).endswith(_norm(label)) and \
                    _norm(cells[j]) == _norm(value):
                return True
        return False
    words = _norm(shown)
    if _norm(column) not in words:
        return False
    return any(_norm(label) in _norm(line) and re.search(
        rf"(?<![\d,.]){re.escape(value)}(?![\d,]|\.\d)", line) for line in shown.split("\n"))


def coverage(kb: KnowledgeBase, statements: dict[str, Any]) -> tuple[int, int]:
    chunks = list(kb.store.scan())
    found = total = 0
    for filing, spec in statements.items():
        if filing == "about":
            continue
        mine = [c for c in chunks if filing in Path(c.source).name and c.page == spec["page"]]
        for label, *values in spec["rows"]:
            for column, value in zip(spec["columns"], values, strict=True):
                total += 1
                found += any(landed(c, label, column, value) for c in mine)
    return found, total


def questions_as(data: list[dict[str, Any]], rewritten: bool) -> list[str]:
    standalone: dict[int, str] = {}
    out = []
    for q in data:
        history = [standalone[q["follows"]]] if "follows" in q else []
        read = rewrite(q["q"], history).question if rewritten else q["q"]
        standalone[q["id"]] = rewrite(q["q"], history).question
        out.append(read)
    return out


def hits(kb: KnowledgeBase, data: list[dict[str, Any]], asked: list[str], k: int) -> list[bool]:
    out = []
    for q, question in zip(data, asked, strict=True):
        top = kb.search(question, k=k)
        out.append(any(q["filing"] in Path(h.chunk.source).name and q["figure"] in h.chunk.text
                       for h in top))
    return out


def prose_pdf(path: Path, pages: int = 40) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    sentence = ("The committee met in 2022 to review the plan, and the board approved it after "
                "a long discussion of the risks and the schedule. ")
    for n in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 5, f"Chapter {n + 1}. " + sentence * 30)
    pdf.output(str(path))
    return path


def load_ms(path: Path, before: bool, repeat: int = 5) -> float:
    load = partial(text_only, path, path.name) if before else partial(loaders.load, path)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        load()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


# --- 5. the table finder against pdfplumber ----------------------------------------------

# a table as rows of (label, values in column order), with the columns' headers if it has them
Rows = tuple[list[tuple[str, list[str]]], list[str] | None]
_AMOUNT = re.compile(r"\$?\s*\(?-?\$?[\d,]*\d(\.\d+)?\s*\)?%?|[—–-]")


def _letters(text: str) -> str:
    return "".join(text.replace("’", "'").replace("$", "").split()).lower()


def _amount(text: str) -> str:
    text = "".join(text.replace("$", "").split())
    return "—" if text in ("—", "–", "-") else text.replace("(", "-").replace(")", "")


def finder_pages(path: Path) -> dict[int, list[Rows]]:
    """Tables by page number as ``load_pdf`` finds them (pages with table lines only)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    out: dict[int, list[Rows]] = {}
    for n in range(len(pdf)):
        textpage = pdf[n].get_textpage()
        text = textpage.get_text_range()
        tables = find_tables(textpage, text) if has_table_lines(text) else []
        out[n + 1] = [([(label, list(cells)) for label, cells in t.rows], list(t.columns))
                      for t in tables]
    pdf.close()
    return out


def plumber_pages(path: Path, settings: dict[str, Any]) -> dict[int, list[Rows]]:
    """pdfplumber's tables by page number. A row's label is its cells before its first
    amount, its values its amounts in order, whichever grid column each fell in (its grid
    puts one column's numbers in different columns on different rows)."""
    import pdfplumber

    out: dict[int, list[Rows]] = {}
    with pdfplumber.open(str(path)) as pdf:
        for n, page in enumerate(pdf.pages, 1):
            out[n] = []
            for grid in page.extract_tables(settings):
                rows = []
                for row in grid:
                    cells = [(c or "").strip() for c in row]
                    first = next((j for j, c in enumerate(cells) if _AMOUNT.fullmatch(c)), None)
                    if first is not None:
                        rows.append((" ".join(cells[:first]),
                                     [c for c in cells[first:] if _AMOUNT.fullmatch(c)]))
                out[n].append((rows, None))
    return out


def recovered(tables: list[Rows], columns: list[str], label: str, j: int,
              value: str) -> tuple[bool, bool]:
    """Whether a cell is in one of a page's tables, and whether under its header too."""
    cell = header = False
    for rows, heads in tables:
        for row_label, values in rows:
            if _letters(row_label).endswith(_letters(label)) and len(values) > j and \
                    _amount(values[j]) == _amount(value):
                cell = True
                header |= heads is not None and len(heads) > j and \
                    _letters(heads[j]) == _letters(columns[j])
    return cell, header


def reference(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The hand-copied statements, ``(filing, statement)``: income statements, balance
    sheets and cash flows."""
    out = [(f, s) for f, s in spec["statements"].items() if f != "about"]
    out += [(f, s) for f, ss in spec["more_statements"].items() if f != "about" for s in ss]
    return out


EXTRACTORS = {
    "ragtune (PDFium boxes)": finder_pages,
    "pdfplumber, default (lines)": partial(plumber_pages, settings={}),
    "pdfplumber, text": partial(plumber_pages, settings={"vertical_strategy": "text",
                                                         "horizontal_strategy": "text"}),
}


def compare_extractors(folder: Path, spec: dict[str, Any]) -> dict[str, Any]:
    try:
        import pdfplumber  # noqa: F401
    except ImportError:
        print("5. skipped: pdfplumber is not installed (pip install pdfplumber)")
        return {}
    paths = sorted(folder.glob("*.pdf"))
    statements = reference(spec)
    result: dict[str, Any] = {}
    print("5. table finders: tables found, seconds per filing, cells recovered "
          f"({sum(len(s['rows']) * len(s['columns']) for _, s in statements)} hand-copied)")
    print(f"   {'extractor':28} {'tables':>7} {'s/filing':>9} {'cells':>13} {'with header':>13}")
    for name, extract in EXTRACTORS.items():
        found, seconds = {}, []
        for path in paths:
            t = time.perf_counter()
            found[path.name] = extract(path)
            seconds.append(time.perf_counter() - t)
        cells = headed = total = 0
        by_statement: dict[str, list[int]] = {}
        for filing, st in statements:
            pages = next(v for k, v in found.items() if filing in k)
            got = [0, 0]
            for label, *values in st["rows"]:
                for j, value in enumerate(values):
                    cell, header = recovered(pages[st["page"]], st["columns"], label, j, value)
                    got[0] += cell
                    got[1] += header
                    total += 1
            by_statement[f"{filing} {st.get('statement', 'income statement')}"] = got
            cells, headed = cells + got[0], headed + got[1]
        tables = sum(len(ts) for pages in found.values() for ts in pages.values())
        per_filing = {k: round(s, 2) for k, s in zip(found, seconds, strict=True)}
        result[name] = {"tables": tables, "seconds": per_filing, "cells": [cells, total],
                        "with_header": [headed, total], "by_statement": by_statement}
        print(f"   {name:28} {tables:7d} {statistics.mean(seconds):9.2f} "
              f"{cells:4d} = {cells / total:.2f} {headed:4d} = {headed / total:.2f}")
    print("   cells by statement (extractor: recovered of each statement's cells):")
    for key in next(iter(result.values()))["by_statement"]:
        counts = "  ".join(f"{r['by_statement'][key][0]:2d}" for r in result.values())
        print(f"     {key:28} {counts}")
    for name, r in result.items():
        print(f"   {name}: seconds by filing {r['seconds']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--answers", action="store_true",
                        help="also answer each question with the bundled generator")
    parser.add_argument("--extractors-only", action="store_true",
                        help="only compare the table finder with pdfplumber's (5.)")
    args = parser.parse_args()
    folder = require(data_dir() / "sec10q_pdfs")
    spec = json.loads(QUESTIONS.read_text())
    if args.extractors_only:
        print(f"\nwrote {write_result('sec_extractors', compare_extractors(folder, spec))}")
        return
    data = spec["questions"]
    follow = [("follows" in q) for q in data]
    result: dict[str, Any] = {"k": args.k, "questions": len(data)}
    with tempfile.TemporaryDirectory() as tmp:
        kbs = {side: build(folder, Path(tmp) / side, side == "before")
               for side in ("before", "after")}
        print("1. cells that land in a chunk with their row label and column header")
        for side, kb in kbs.items():
            found, total = coverage(kb, spec["statements"])
            chunks = sum(1 for _ in kb.store.scan())
            result[f"cells_{side}"] = [found, total]
            result[f"chunks_{side}"] = chunks
            print(f"   {side:6} {found:3d} / {total} = {found / total:.2f}   ({chunks} chunks)")
        print(f"\n2. top-{args.k} retrieval hit rate, 20 questions (10 follow-ups)")
        print(f"   {'chunks':7} {'questions':12} {'all':>5} {'fresh':>6} {'follow-ups':>11}")
        for side, kb in kbs.items():
            for rewritten in (False, True):
                got = hits(kb, data, questions_as(data, rewritten), args.k)
                fresh = [g for g, f in zip(got, follow, strict=True) if not f]
                ups = [g for g, f in zip(got, follow, strict=True) if f]
                name = "rewritten" if rewritten else "as asked"
                result[f"hits_{side}_{name.replace(' ', '_')}"] = [int(g) for g in got]
                print(f"   {side:7} {name:12} {sum(got) / len(got):5.2f} "
                      f"{sum(fresh) / len(fresh):6.2f} {sum(ups) / len(ups):11.2f}")
        if args.answers:
            print("\n4. answers that state the figure (bundled generator)")
            for side, kb in kbs.items():
                asked = questions_as(data, side == "after")
                texts = [kb.ask(question).text for question in asked]
                right = [q["figure"] in text for q, text in zip(data, texts, strict=True)]
                result[f"answers_{side}"] = [int(r) for r in right]
                result[f"answer_texts_{side}"] = [{"asked": a, "answer": t}
                                                  for a, t in zip(asked, texts, strict=True)]
                print(f"   {side:6} {sum(right):2d} / {len(right)} = {sum(right) / len(right):.2f}")
        for kb in kbs.values():
            kb.close()
        print("\n3. load time, median of 5 (ms)")
        prose = prose_pdf(Path(tmp) / "prose.pdf")
        for path in [*sorted(folder.glob("*.pdf")), prose]:
            before, after = load_ms(path, True), load_ms(path, False)
            result[f"load_ms_{path.stem}"] = [round(before, 1), round(after, 1)]
            name = path.name if path != prose else "40-page prose PDF (no tables)"
            print(f"   {name:32} before {before:7.1f}  after {after:7.1f}  "
                  f"ratio {after / before:.2f}")
    print()
    result["extractors"] = compare_extractors(folder, spec)
    print(f"\nwrote {write_result('sec_tables', result)}")


if __name__ == "__main__":
    main()
