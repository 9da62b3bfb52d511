"""The bundled English grounded-answer adapter of gemma-3-270m, the default generator: an
English question gets it, a Chinese one the model's Chinese adapter, on the engine
`generator.backend = "auto"` picks for gemma (llama.cpp)."""

import json
import re

import pytest

from ragtune import KnowledgeBase, load_settings
from ragtune.models.adapters import bundled_adapter
from ragtune.models.local_generator import LocalGenerator
from tests.integration.conftest import office_docs

pytestmark = pytest.mark.skipif(
    bundled_adapter("gemma-3-270m", "en") is None,
    reason="this checkout ships no English grounded adapter for gemma-3-270m "
           "(bench/answer_adapters.py --base gemma-3-270m --install builds it)")

GEMMA: dict[str, dict[str, str]] = {}  # the defaults


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("grounded-gemma")
    docs = office_docs(root)
    base = KnowledgeBase.create(root / "kb", load_settings(env={}, overrides=GEMMA),
                                embedder=embedder)
    assert base.ingest([docs]).exit_code == 0
    return base


def test_the_english_gemma_adapter_ships_with_its_run_record():
    folder = bundled_adapter("gemma-3-270m", "en")
    run = json.loads((folder / "run.json").read_text())
    assert run["config"]["base"] == "gemma-3-270m" and run["config"]["extra"]["dataset"] == "squad"
    assert LocalGenerator("gemma-3-270m", adapter="auto").adapter == folder


def test_gemma_answers_english_with_its_english_adapter_short_and_cited(kb):
    answer = kb.ask("How much does a parking permit cost?")
    assert answer.adapter == "gemma-3-270m-grounded-en"
    assert type(kb.generator).__name__ == "LlamaCppGenerator"
    assert not answer.abstained and "40" in answer.text
    assert re.fullmatch(r"[^\[\]]+ \[[123]\]", answer.text), answer.text
    assert answer.citations[0].chunk.source.endswith("parking.txt")
    plain = kb.ask("How much does a parking permit cost?",
                   generator=LocalGenerator("gemma-3-270m", adapter="none"), max_tokens=32)
    assert plain.adapter is None and plain.text != answer.text
    # the same model answers Chinese with its Chinese adapter
    assert kb.generator_for("停车证多少钱？").adapter_name == "gemma-3-270m-grounded-zh"
