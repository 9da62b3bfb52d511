"""The llamacpp generator on the bundled GGUF file, against the local (torch) generator."""

from __future__ import annotations

import pytest

from ragtune.config import GeneratorSettings
from ragtune.errors import ConfigError
from ragtune.models.components import build_generator
from ragtune.models.llamacpp_generator import LlamaCppGenerator
from ragtune.models.local_generator import LocalGenerator

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
LISTING = [{"role": "user", "content": "Write the word apple twenty times, one per line."}]


@pytest.fixture(scope="module")
def llama() -> LlamaCppGenerator:
    return LlamaCppGenerator("smollm2-135m-instruct", stop=["\nQuestion:"])


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


def test_it_is_registered_and_refuses_an_adapter_it_cannot_run() -> None:
    built = build_generator(GeneratorSettings(backend="llamacpp", adapter="none"))
    assert isinstance(built, LlamaCppGenerator)
    with pytest.raises(ConfigError, match="base model"):
        LlamaCppGenerator.from_settings(GeneratorSettings(backend="llamacpp", adapter="/x"))
    with pytest.raises(ConfigError, match="GGUF"):
        LlamaCppGenerator("no-such-model")
