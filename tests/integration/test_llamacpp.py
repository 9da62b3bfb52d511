"""The llamacpp generator on the bundled GGUF file, against the local (torch) generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.config import GeneratorSettings
from ragtune.errors import ConfigError
from ragtune.models.components import build_generator
from ragtune.models.llamacpp_generator import LlamaCppGenerator
from ragtune.models.local_generator import LocalGenerator
from ragtune.rag.prompts import build_messages
from ragtune.testing.contracts import check_generator
from ragtune.types import Chunk

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
LISTING = [{"role": "user", "content": "Write the word apple twenty times, one per line."}]


@pytest.fixture(scope="module")
def llama() -> LlamaCppGenerator:
    return LlamaCppGenerator("smollm2-135m-instruct", stop=["\nQuestion:"])


def test_it_keeps_the_generator_contract(llama: LlamaCppGenerator) -> None:
    check_generator(llama)


def test_it_answers_and_counts_tokens_like_the_local_generator(
        llama: LlamaCppGenerator, generator: LocalGenerator) -> None:
    done = llama.generate(QUESTION, max_tokens=40)
    assert "Paris" in done.text
    assert done.finish_reason == "stop"
    # the same chat template and tokenizer: the prompt is the same number of tokens
    assert done.prompt_tokens == llama.count_tokens(QUESTION) == generator.count_tokens(QUESTION)


def test_streaming_gives_the_same_text_and_a_budget_ends_it(llama: LlamaCppGenerator) -> None:
    assert "".join(llama.stream(QUESTION, max_tokens=40)).strip() == llama.generate(
        QUESTION, max_tokens=40).text
    short = llama.generate(LISTING, max_tokens=5)
    assert short.finish_reason == "length" and short.completion_tokens == 5


def test_a_stop_sequence_ends_the_answer_before_it(llama: LlamaCppGenerator) -> None:
    stopped = LlamaCppGenerator("smollm2-135m-instruct", stop=["Paris"])
    assert "Paris" not in stopped.generate(QUESTION, max_tokens=40).text
    assert "Paris" in llama.generate(QUESTION, max_tokens=40).text


def test_the_repetition_control_keeps_a_listing_from_looping(llama: LlamaCppGenerator) -> None:
    raw = LlamaCppGenerator("smollm2-135m-instruct", no_repeat=0)
    looped = raw.generate(LISTING, max_tokens=60).text
    held = llama.generate(LISTING, max_tokens=60).text
    assert held != looped
    lines = [line for line in held.splitlines() if line.strip()]
    assert len(lines) - len(set(lines)) < 10


def test_a_stream_that_is_left_stops_and_the_engine_serves_the_next(
        llama: LlamaCppGenerator) -> None:
    stream = llama.stream(LISTING, max_tokens=200)
    next(stream)
    stream.close()
    assert "Paris" in llama.generate(QUESTION, max_tokens=40).text


def test_it_is_registered_and_a_bad_model_is_a_clear_error() -> None:
    built = build_generator(GeneratorSettings(backend="llamacpp", adapter="none"))
    assert isinstance(built, LlamaCppGenerator) and built.adapter is None
    with pytest.raises(ConfigError, match="GGUF"):
        LlamaCppGenerator("no-such-model")


FACTS = ["The Harbor Bridge opened in 1932 and carries eight lanes.",
         "The city library closes at 6 pm on Sundays."]
GROUNDED = build_messages("When did the Harbor Bridge open?", [
    Chunk(id=f"c{i}", source=f"notes{i}.md", text=t, start=0, end=len(t))
    for i, t in enumerate(FACTS)])


def test_the_bundled_adapter_runs_on_llama_cpp_as_a_gguf_lora() -> None:
    tuned = LlamaCppGenerator("smollm2-135m-instruct", adapter="auto")
    assert tuned.adapter_name == "smollm2-135m-instruct-grounded-en"
    answer = tuned.generate(GROUNDED, max_tokens=32).text
    raw = LlamaCppGenerator("smollm2-135m-instruct", adapter="none").generate(
        GROUNDED, max_tokens=32).text
    # the adapter's format: a short span and its marker, and nothing after it
    assert "1932" in answer and answer.endswith("[1]"), answer
    assert answer != raw
    assert "".join(tuned.stream(GROUNDED, max_tokens=32)).strip() == answer


def test_gemmas_adapter_runs_on_llama_cpp_as_on_the_local_engine() -> None:
    # gemma 3 keeps its query/key rows in transformers' order: nothing is permuted, and a
    # wrong permutation would change the answer
    tuned = LlamaCppGenerator("gemma-3-270m", adapter="auto")
    assert tuned.adapter_name == "gemma-3-270m-grounded-en"
    local = LocalGenerator("gemma-3-270m", adapter="auto")
    answer = tuned.generate(GROUNDED, max_tokens=24).text
    assert "1932" in answer and answer.endswith("[1]"), answer
    assert answer == local.generate(GROUNDED, max_tokens=24).text
    raw = LlamaCppGenerator("gemma-3-270m", adapter="none").generate(GROUNDED, max_tokens=24)
    assert raw.text != answer


def test_the_bundled_adapters_abstention_is_weighed_as_on_the_local_engine() -> None:
    tuned = LlamaCppGenerator("smollm2-135m-instruct", adapter="auto")
    local = LocalGenerator("smollm2-135m-instruct", adapter="auto")
    unanswered = [{"role": m["role"], "content": m["content"].replace(
        "When did the Harbor Bridge open?", "Who designed the Harbor Bridge?")}
        for m in GROUNDED]
    for messages in (GROUNDED, unanswered):
        p_llama = tuned.abstain_probability(messages)
        p_local = local.generate(messages, max_tokens=8).abstain_probability
        assert p_llama is not None and p_local is not None
        assert abs(p_llama - p_local) < 0.05  # a quantised base: close, not equal
    tuned.abstain_threshold = 0.0  # every answer abstains
    assert tuned.generate(GROUNDED, max_tokens=16).text == "The sources do not say."
    assert "".join(tuned.stream(GROUNDED, max_tokens=16)) == "The sources do not say."
    tuned.abstain_threshold = 1.0  # none does
    assert "1932" in tuned.generate(GROUNDED, max_tokens=16).text


def test_parallel_slots_answer_concurrent_requests_as_they_answer_one_at_a_time() -> None:
    from concurrent.futures import ThreadPoolExecutor

    slots = LlamaCppGenerator("smollm2-135m-instruct", parallel=2)
    questions = [[{"role": "user", "content": f"What is {a} plus {a}? Answer with a number."}]
                 for a in (2, 3, 4, 5)]
    alone = [slots.generate(q, max_tokens=12).text for q in questions]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda q: slots.generate(q, max_tokens=12).text, questions))
    assert together == alone


def test_an_answers_requests_share_its_slot_so_its_prompt_is_read_once() -> None:
    """The bundled adapter weighs its abstention in two requests before the answer's: all
    three go to one slot, whose cache then holds the prompt; answers at once get others."""
    from concurrent.futures import ThreadPoolExecutor

    gen = LlamaCppGenerator("gemma-3-270m", parallel=2, adapter="auto")
    sent: list[tuple[list[int], int]] = []
    handle = gen._server.handle_completions

    def spy(body: dict, *callback: object) -> object:
        sent.append((list(body["prompt"]), body["id_slot"]))
        return handle(body, *callback)

    gen._server = type("Spy", (), {"handle_completions": staticmethod(spy)})()
    questions = [build_messages(q, [Chunk(id="a", source="notes.txt", text=t, start=0, end=len(t))])
                 for q, t in [("What colour is the door?", "The door is painted green."),
                              ("How old is the cat?", "The cat is seven years old.")]]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda m: gen.generate(m, max_tokens=12), questions))
    slots = []
    for messages in questions:
        ids = gen._ids(messages)
        used = {slot for prompt, slot in sent if prompt[:len(ids)] == ids}
        assert len(used) == 1 and len([p for p, _ in sent if p[:len(ids)] == ids]) == 3
        slots.append(used.pop())
    assert len(sent) == 6 and slots[0] != slots[1]


def test_tune_export_gguf_writes_the_lora_file_llama_cpp_loads(tmp_path: Path) -> None:
    import gguf
    from typer.testing import CliRunner

    from ragtune.cli import app
    from ragtune.models.adapters import bundled_adapter

    adapter = bundled_adapter("smollm2-135m-instruct")
    out = tmp_path / "grounded.gguf"
    result = CliRunner().invoke(app, ["tune", "export", str(adapter), "--out", str(out),
                                      "--gguf"])
    assert result.exit_code == 0, result.output
    reader = gguf.GGUFReader(str(out))
    names = {t.name for t in reader.tensors}
    # 30 layers x 7 projections x (A, B)
    assert len(names) == 420 and "blk.0.attn_q.weight.lora_b" in names
    again = CliRunner().invoke(app, ["tune", "export", str(adapter), "--out", str(out),
                                     "--gguf"])
    assert again.exit_code != 0 and "exists" in again.output


def test_a_fresh_machine_converts_only_the_tokenizer_for_llama_cpp(tmp_path, monkeypatch):
    # llama.cpp runs the GGUF file: the de-quantised weights are never written for it
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path))
    fresh = LlamaCppGenerator("smollm2-135m-instruct", adapter="auto")
    folders = [p for p in (tmp_path / "converted").iterdir() if not p.name.startswith(".")]
    assert [p.name.endswith("-tokenizer") for p in folders] == [True]
    assert not (folders[0] / "model.safetensors").exists()
    monkeypatch.delenv("RAGTUNE_CACHE_DIR")
    whole = LlamaCppGenerator("smollm2-135m-instruct", adapter="auto")
    assert fresh.count_tokens(GROUNDED) == whole.count_tokens(GROUNDED)
    assert fresh._ids(GROUNDED) == whole._ids(GROUNDED)
    assert fresh.generate(GROUNDED, max_tokens=16).text == whole.generate(
        GROUNDED, max_tokens=16).text
