"""The bundled grounded-answer adapter on the real bundled model: it ships, loads, answers
short with an [n] from its source, abstains when the sources miss, and a mismatched
adapter is a clear error."""

import json

import pytest

from ragtune import KnowledgeBase
from ragtune.errors import ConfigError
from ragtune.models.adapters import bundled_adapter
from ragtune.models.local_generator import LocalGenerator
from tests.integration.conftest import office_docs

shipped = pytest.mark.skipif(bundled_adapter("smollm2-135m-instruct") is None,
                             reason="this checkout ships no grounded adapter yet "
                                    "(bench/answer_adapters.py --install builds it)")


@pytest.fixture(scope="module")
def tuned():
    return LocalGenerator("smollm2-135m-instruct", adapter="auto")  # as `ragtune ask` does


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder, tuned):
    root = tmp_path_factory.mktemp("grounded")
    docs = office_docs(root)
    base = KnowledgeBase.create(root / "kb", embedder=embedder, generator=tuned)
    assert base.ingest([docs]).exit_code == 0
    return base


@shipped
def test_the_adapter_ships_with_its_run_record(tuned, generator):
    folder = bundled_adapter("smollm2-135m-instruct")
    assert folder is not None and tuned.adapter == folder and generator.adapter is None
    assert tuned.adapter_name == "smollm2-135m-instruct-grounded-en"
    run = json.loads((folder / "run.json").read_text())
    assert run["config"]["extra"]["recipe"] == "bench/answer_adapters.py"
    assert len(run["data"]["hashes"]["train.jsonl"]) == 64 and run["config"]["seed"] == 0
    def strings(value):  # type: ignore[no-untyped-def]
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    assert not [s for s in strings(run) if s.startswith("/")]  # no path of the machine
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m-instruct"


@shipped
def test_the_adapter_answers_short_and_cited_where_the_raw_model_does_not(kb, generator):
    raw = generator  # the session's generator: LocalGenerator's own default, no adapter
    question = "How much does a parking permit cost?"
    tuned = kb.ask(question)
    assert tuned.adapter == "smollm2-135m-instruct-grounded-en"
    assert "40" in tuned.text and "[" in tuned.text and not tuned.abstained
    assert tuned.citations[0].chunk.source.endswith("parking.txt")
    assert tuned.citations[0].supported
    plain = kb.ask(question, generator=raw)
    assert plain.adapter is None and plain.text != tuned.text
    assert tuned.completion_tokens < plain.completion_tokens


@shipped
def test_an_answer_the_sources_do_not_hold_is_flagged_and_strict_mode_abstains(
        kb, embedder, tuned):
    from ragtune import load_settings

    question = "What is the boiling point of mercury?"
    answer = kb.ask(question)
    # the small model may still write an answer: it is never passed off as supported
    assert answer.abstained or (answer.unsupported
                                and not any(c.supported for c in answer.citations))
    strict = KnowledgeBase.open(kb.path, load_settings(
        env={}, overrides={"generator": {"citations": "strict"}}), embedder=embedder,
        generator=tuned)
    answer = strict.ask(question)
    assert answer.abstained and answer.text == "The sources do not say."
    assert not answer.citations
    # a question the sources answer still gets its answer in strict mode
    assert "40" in strict.ask("How much does a parking permit cost?").text


def test_a_question_no_source_is_close_to_abstains_before_generating(kb):
    off_topic = kb.ask("What is the boiling point of mercury?")
    assert off_topic.abstained and off_topic.steps == ("retrieve", "relevance")
    assert off_topic.similarity is not None and "min_similarity" in off_topic.notes[0]
    on_topic = kb.ask("How much does a parking permit cost?")
    assert not on_topic.abstained and on_topic.similarity > off_topic.similarity


@shipped
def test_the_abstention_is_weighed_and_chosen_at_the_calibrated_threshold(kb, tuned,
                                                                          embedder):
    from ragtune import load_settings

    threshold = tuned.abstain_threshold
    assert threshold is not None and 0 < threshold < 1  # the adapter's calibration.json
    kb = KnowledgeBase.open(kb.path, load_settings(  # every question reaches the model
        env={}, overrides={"retrieval": {"min_similarity": -1}}), embedder=embedder,
        generator=tuned)
    answered = kb.ask("How much does a parking permit cost?")
    missing = kb.ask("What is the boiling point of mercury?")
    # measured before each answer (the small model's own sense of it is weak: the
    # similarity threshold does most of the abstaining, see rag.relevance)
    for answer in (answered, missing):
        assert 0 < answer.abstain_probability < threshold
        assert not answer.abstained
    assert answered.to_dict()["abstain_probability"] == round(answered.abstain_probability, 4)
    try:
        tuned.abstain_threshold = 0.0  # every answer abstains
        assert kb.ask("How much does a parking permit cost?").abstained
        tuned.abstain_threshold = 1.0  # none does
        forced = kb.ask("What is the boiling point of mercury?")
        assert not forced.abstained and not forced.text.startswith("The sources")
    finally:
        tuned.abstain_threshold = threshold


@shipped
def test_an_answer_never_begins_with_its_citation(kb, tuned):
    for question in ("How much does a parking permit cost?", "When do trips get booked?",
                     "Where do employees park?"):
        assert not kb.ask(question).text.lstrip().startswith("[")


def test_an_adapter_that_does_not_fit_the_base_model_names_both(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2,
                                        num_key_value_heads=1))
    lora = get_peft_model(tiny, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(str(tmp_path / "other"))
    with pytest.raises(ConfigError, match="does not fit the base model smollm2-135m-instruct"):
        LocalGenerator("smollm2-135m-instruct", adapter=tmp_path / "other")
