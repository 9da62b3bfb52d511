"""Filters, MMR, reranking and neighbouring-chunk expansion."""

import time
from dataclasses import replace

import numpy as np
import pytest

from ragtune import KnowledgeBase
from ragtune.config import RetrievalSettings
from ragtune.errors import ConfigError, UnknownComponentError
from ragtune.retrieve.diversity import merge_spans, mmr
from ragtune.retrieve.filters import Filter, parse_pages, parse_time
from ragtune.retrieve.rerank import build_reranker
from ragtune.testing import FakeEmbedder, FakeGenerator
from ragtune.testing.contracts import check_reranker


@pytest.fixture
def kb(tmp_path):
    from fpdf import FPDF

    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = FPDF()
    for i in range(1, 6):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(w=0, text=f"Page {i} discusses the budget for year {2020 + i}.")
    pdf.output(str(docs / "report.pdf"))
    (docs / "notes.txt").write_text("The budget meeting notes mention year 2023 as well.")
    base = KnowledgeBase.create(tmp_path / "kb", embedder=FakeEmbedder(),
                                generator=FakeGenerator())
    base.ingest([docs])
    return base


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_source_and_page_filters(kb, mode):
    hits = kb.search("budget year", k=10, mode=mode, filter=Filter(source="*.pdf", pages=(2, 3)))
    assert hits and {h.chunk.page for h in hits} <= {2, 3}
    assert all(h.chunk.source.endswith("report.pdf") for h in hits)
    only_txt = kb.search("budget", k=10, mode=mode, filter=Filter(source="notes.txt"))
    assert [h.chunk.source.rsplit("/", 1)[-1] for h in only_txt] == ["notes.txt"]


def test_time_filter(kb):
    assert kb.search("budget", k=10, filter=Filter(since=time.time() + 3600)) == []
    assert kb.search("budget", k=10, filter=Filter(until=time.time() + 3600))


def test_parsers():
    assert parse_pages("3-7") == (3, 7) and parse_pages("4") == (4, 4)
    with pytest.raises(ConfigError, match="range like 3-7"):
        parse_pages("x")
    with pytest.raises(ConfigError, match="pages start at 1"):
        parse_pages("5-2")
    assert parse_time("2026-01-31") > 0
    with pytest.raises(ConfigError, match="ISO date"):
        parse_time("yesterday")


def test_mmr_prefers_diverse_results():
    v = np.array([[1, 0, 0], [0.99, 0.14, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    relevance = np.array([1.0, 0.95, 0.6, 0.2])
    assert mmr(relevance, v, 2, lambda_=1.0) == [0, 1]  # relevance only
    assert mmr(relevance, v, 2, lambda_=0.5) == [0, 2]  # the near-duplicate is skipped


def test_mmr_through_settings(kb):
    kb.settings = replace(kb.settings, retrieval=replace(kb.settings.retrieval, mmr_lambda=0.3))
    hits = kb.search("budget year", k=3)
    assert len(hits) == 3 and len({h.chunk.id for h in hits}) == 3


def test_neighbours_join_adjacent_chunks():
    assert merge_spans([(10, 20, "b" * 10), (0, 12, "a" * 10 + "bb")]) == (0, 20, "a" * 10 +
                                                                          "b" * 10)
    assert merge_spans([(0, 3, "abc"), (10, 13, "xyz")]) == (0, 13, "abc\n\nxyz")


def test_neighbour_expansion_in_ask(tmp_path):
    docs = tmp_path / "d"
    docs.mkdir()
    sentences = [f"Sentence {i} " + "filler " * 8 + "ends." for i in range(12)]
    (docs / "long.txt").write_text(" ".join(sentences))
    from ragtune import Settings
    from ragtune.config import ChunkSettings

    base = KnowledgeBase.create(tmp_path / "kb", Settings(chunking=ChunkSettings(
        max_tokens=22, overlap=0)), embedder=FakeEmbedder(), generator=FakeGenerator())
    base.ingest([docs])
    hit = base.search("Sentence 5", k=1, mode="lexical")[0]
    wide = base.expand([hit], 1)[0]
    assert wide.chunk.start < hit.chunk.start and wide.chunk.end > hit.chunk.end
    assert hit.chunk.text in wide.chunk.text
    base.settings = replace(base.settings, retrieval=replace(base.settings.retrieval,
                                                             neighbours=1))
    base.ask("Sentence 5", k=1, mode="lexical")
    context = base.generator.last_messages[-1]["content"]
    assert wide.chunk.text in context


class ReverseReranker:
    def rerank(self, query, hits):
        return [replace(h, score=float(i)) for i, h in enumerate(hits)][::-1]


def test_reranker_reorders(kb):
    from ragtune.retrieve.pipeline import SearchPipeline

    plain = kb.search("budget year", k=5)
    reranked = SearchPipeline(kb.retriever(), reranker=ReverseReranker(), rerank_depth=5
                              ).retrieve("budget year", 5)
    assert [h.chunk.id for h in reranked] == [h.chunk.id for h in plain][::-1]


def test_cross_encoder_from_a_folder(tmp_path, kb):
    from ragtune.retrieve.rerank import CrossEncoderReranker

    with pytest.raises(ConfigError, match="CrossEncoder"):
        CrossEncoderReranker(tmp_path / "nothing")
    # a tiny, randomly initialised cross-encoder with the bundled MiniLM's tokenizer: this
    # checks the plumbing (loading by path, scoring pairs), not ranking quality
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from ragtune.models.registry import bundled_model, model_files

    files = model_files(bundled_model("all-minilm-l6-v2"))
    if files is None:
        pytest.skip("the bundled embedder (its tokenizer) is not installed")
    folder = tmp_path / "ce"
    BertTokenizerFast.from_pretrained(str(files[0])).save_pretrained(str(folder))
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    reranker = build_reranker(RetrievalSettings(reranker=str(folder)))  # by registry name
    assert isinstance(reranker, CrossEncoderReranker) and reranker.name == str(folder)
    check_reranker(reranker, "budget", kb.search("budget", k=4))


def test_rerankers_are_chosen_by_registry_name():
    assert build_reranker(RetrievalSettings()) is None  # no folder: no reranking
    with pytest.raises(UnknownComponentError) as err:
        build_reranker(RetrievalSettings(reranker="x", reranker_backend="colbert"))
    assert str(err.value) == "unknown reranker 'colbert'; valid choices: cross-encoder"
