"""The bundled Chinese grounded-answer adapter (gemma-3-270m): `ask` picks it for a Chinese
question by itself, answers in Chinese with an [n] from the source that holds the answer,
where the raw base model rambles."""

import json
import re

import pytest

from ragtune import KnowledgeBase, load_settings
from ragtune.models.adapters import bundled_adapter
from ragtune.models.local_generator import LocalGenerator

pytestmark = pytest.mark.skipif(
    bundled_adapter("gemma-3-270m", "zh") is None,
    reason="this checkout ships no Chinese grounded adapter "
           "(bench/answer_adapters.py --dataset drcd --base gemma-3-270m --install builds it)")

DOCS = {
    "食堂.txt": "公司食堂每個工作日早上八點開門，下午三點關門。食堂每天都供應一道素食。",
    "停車.txt": "員工把車停在榆樹街的車庫。停車證每個月四十歐元，在前台購買。",
    "出差.txt": "出差要至少提前兩週通過差旅辦公室預訂。四小時以內的行程優先乘坐火車。",
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("grounded-zh")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    # settings left to ragtune: the first ingest picks the multilingual embedder
    base = KnowledgeBase.create(root / "kb", load_settings(env={}))
    assert base.ingest([docs]).exit_code == 0
    assert base.manifest.embedder_model == "multilingual-e5-small"
    return base


def test_the_chinese_adapter_ships_with_its_run_record():
    folder = bundled_adapter("gemma-3-270m", "zh")
    run = json.loads((folder / "run.json").read_text())
    assert run["config"]["base"] == "gemma-3-270m"
    assert run["config"]["extra"]["dataset"] == "drcd"
    assert json.loads((folder / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == "gemma-3-270m"


def test_a_chinese_question_gets_a_short_cited_answer_from_the_chinese_adapter(kb):
    # the 270M model reads some of these sources wrong (BENCHMARKS.md has its DRCD scores),
    # so the content is checked on one question; the shape of every answer is checked
    answer = kb.ask("食堂幾點關門？")
    assert answer.adapter == "gemma-3-270m-grounded-zh"
    assert not answer.abstained and "三點" in answer.text
    assert answer.citations[0].chunk.source.endswith("食堂.txt")
    for question in ("食堂幾點關門？", "停車證每個月多少錢？", "員工把車停在哪裡？"):
        tuned = kb.ask(question)
        assert tuned.abstained or re.fullmatch(r"[^\[\]]+ \[[123]\]", tuned.text), tuned.text
        assert tuned.completion_tokens <= 16
    plain = kb.ask("食堂幾點關門？", generator=LocalGenerator("gemma-3-270m", adapter="none"),
                   max_tokens=32)
    assert plain.adapter is None and plain.text != answer.text
    assert plain.completion_tokens > 2 * answer.completion_tokens  # the raw base rambles
    assert kb.generator_for("出差要提前多久預訂？") is kb.generator_for("停車證每個月多少錢？")


def test_by_language_off_keeps_the_configured_model(kb):
    one = KnowledgeBase.open(kb.path, load_settings(env={}, overrides={"generator": {
        "by_language": "off", "model": "smollm2-135m-instruct"}}))
    assert one.ask("停車證每個月多少錢？").adapter == "smollm2-135m-instruct-grounded-en"
