"""Every registered component runs the contract of its role (ragtune.testing.contracts),
and so do the test fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.documents.loaders import LOADERS
from ragtune.index.stores import STORES, StoreSpec, open_store
from ragtune.pipelines import PIPELINES, Parts, build_pipeline
from ragtune.retrieve.pipeline import SearchPipeline
from ragtune.retrieve.rerank import RERANKERS
from ragtune.testing import FakeEmbedder, FakeGenerator
from ragtune.testing.contracts import (
    check_embedder,
    check_generator,
    check_loader,
    check_pipeline,
    check_retriever,
    check_vector_store,
)

PHRASE = "Every employee receives 25 days of paid vacation per year."


def _pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(w=0, text=PHRASE)
    pdf.output(str(path))


def _docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Leave", level=1)
    document.add_paragraph(PHRASE)
    document.save(str(path))


# one sample file per registered suffix, each holding PHRASE
SAMPLES = {
    ".txt": lambda p: p.write_text(PHRASE),
    ".text": lambda p: p.write_text(PHRASE),
    ".md": lambda p: p.write_text(f"# Leave\n\n{PHRASE}\n"),
    ".markdown": lambda p: p.write_text(f"# Leave\n\n{PHRASE}\n"),
    ".html": lambda p: p.write_text(f"<html><body><h1>Leave</h1><p>{PHRASE}</p></body></html>"),
    ".htm": lambda p: p.write_text(f"<html><body><p>{PHRASE}</p></body></html>"),
    ".json": lambda p: p.write_text(json.dumps([{"title": "Leave", "text": PHRASE}])),
    ".jsonl": lambda p: p.write_text(json.dumps({"text": PHRASE}) + "\n"),
    ".pdf": _pdf,
    ".docx": _docx,
}


def test_the_fakes_keep_the_contracts():
    check_generator(FakeGenerator())
    check_embedder(FakeEmbedder())


@pytest.mark.parametrize("suffix", sorted(LOADERS))
def test_every_registered_loader(tmp_path, suffix):
    assert suffix in SAMPLES, f"loader {suffix} registered without a sample file here"
    path = tmp_path / f"sample{suffix}"
    SAMPLES[suffix](path)
    check_loader(LOADERS[suffix], path, PHRASE)


@pytest.mark.parametrize("name", sorted(STORES))
def test_every_registered_store(tmp_path, name):
    if name == "qdrant":
        pytest.importorskip("qdrant_client", reason="pip install 'ragtune[qdrant]'")
    check_vector_store(lambda dim: open_store(tmp_path, StoreSpec(backend=name), dim))


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_retriever(kb, mode):
    size = sum(len(r.chunk_ids) for r in kb.sources())
    vacation = next(r.source for r in kb.sources() if r.source.endswith("vacation.txt"))
    check_retriever(kb.retriever(mode), "How many days of paid vacation?", vacation,
                    size=size)
    check_retriever(SearchPipeline(kb.retriever(mode), view=kb.reader, mmr_lambda=0.5),
                    "How many days of paid vacation?", vacation, size=size)


def test_every_registered_reranker_has_a_contract_test():
    # the cross-encoder runs check_reranker in tests/unit/retrieve/test_options.py
    assert set(RERANKERS) == {"cross-encoder"}, "a new reranker: run check_reranker on it"


@pytest.mark.parametrize("name", PIPELINES)
def test_every_registered_pipeline(kb, name):
    parts = Parts(kb.retriever(), kb.generator, FakeGenerator(reply="25 days."),
                  embedder=kb.embedder)
    check_pipeline(build_pipeline(name, parts), "How many days of paid vacation?")


def test_the_retriever_contract_catches_a_broken_retriever(kb):
    class WorstFirst:
        def retrieve(self, query, k):
            return list(reversed(kb.search(query, k=k, mode="dense")))

    vacation = next(r.source for r in kb.sources() if r.source.endswith("vacation.txt"))
    with pytest.raises(AssertionError, match="not best first|depends on k"):
        check_retriever(WorstFirst(), "How many days of paid vacation?", vacation, size=2)


def test_the_installed_registries_are_the_ones_pyproject_declares():
    import tomllib

    from ragtune.components import ROLES, Registry

    declared = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    groups = declared["project"]["entry-points"]
    assert sorted(g.removeprefix("ragtune.") for g in groups) == sorted(ROLES)
    for role in ROLES:
        installed = {k: v for k, v in Registry(role, role).targets().items()
                     if not v.startswith("ragtune.testing:")}
        assert installed == groups[f"ragtune.{role}"], \
            f"ragtune.{role}: the installed entry points are stale; run pip install -e ."
