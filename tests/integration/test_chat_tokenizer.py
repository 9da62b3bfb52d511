"""The tokenizer read without transformers gives transformers' prompts, ids and text."""

from __future__ import annotations

import pytest

from ragtune.models.chat_tokenizer import ChatTokenizer
from ragtune.models.local_generator import resolve_tokenizer_dir

TEXTS = [
    "Hello world", "  leading spaces and\ttabs\n\nnew paragraphs  ",
    "资料中没有提到。台北市的人口是多少？", "run `ragtune models install --all` [3]",
    "The sources do not say.", "émigré naïve café — “quotes”", "a  b   c", "🙂 emoji",
    "Net sales | $ 82,959 | $ 81,434\n\n\n", "<start_of_turn>user\nhi<end_of_turn>",
]
MESSAGES = [
    {"role": "system", "content": "Answer from the sources. Cite [n]."},
    {"role": "user", "content": "Sources:\n[1] Paris is the capital of France.\n\n"
                                "Question: What is the capital of France?"},
    {"role": "assistant", "content": "Paris [1]"},
    {"role": "user", "content": "And of Italy?"},
]


@pytest.mark.parametrize("model", ["gemma-3-270m", "smollm2-135m-instruct"])
def test_prompts_ids_and_text_equal_transformers(model: str) -> None:
    from transformers import AutoTokenizer

    folder = resolve_tokenizer_dir(model)
    theirs = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ours = ChatTokenizer(folder)
    for messages in (MESSAGES[:2], MESSAGES[1:2], MESSAGES):
        for generation in (True, False):
            assert ours.apply_chat_template(messages, add_generation_prompt=generation) == \
                theirs.apply_chat_template(messages, add_generation_prompt=generation,
                                           tokenize=False)
    prompt = ours.apply_chat_template(MESSAGES)
    for text in [*TEXTS, prompt]:
        ids = theirs(text, add_special_tokens=False)["input_ids"]
        assert ours(text)["input_ids"] == ours.encode(text) == ids, text
        assert ours.decode(ids) == theirs.decode(ids)
