"""A tiny random Llama with a ChatML word-level tokenizer: a real model folder in
milliseconds, for the trainer's unit tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
WORDS = ("system user assistant what is the capital of france germany spain italy paris "
         "berlin madrid rome answer question a an and it city country").split()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    special = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
    vocab = {w: i for i, w in enumerate([*special, "\n", *WORDS, "?", ".", ","])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n", "isolated"), pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Punctuation()])
    core.add_special_tokens(special)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>",
                                  eos_token="<|im_end|>", bos_token=None)
    tok.chat_template = CHATML
    tok.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab) + 1, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, eos_token_id=vocab["<|im_end|>"],
                         pad_token_id=vocab["<pad>"], bos_token_id=None,
                         tie_word_embeddings=True, initializer_range=0.3)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


def write_prepared(folder: Path, train: list[dict], eval_: list[dict]) -> Path:
    """A prepared-data folder in the layout ``ragtune tune prepare`` writes."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("eval", eval_)):
        (folder / f"{name}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows))
    (folder / "data.json").write_text(json.dumps({"counts": {"train": len(train),
                                                             "eval": len(eval_)}}))
    return folder


def qa_records(n: int, offset: int = 0) -> list[dict]:
    pairs = [("france", "paris"), ("germany", "berlin"), ("spain", "madrid"),
             ("italy", "rome")]
    out = []
    for i in range(n):
        country, city = pairs[(i + offset) % len(pairs)]
        out.append({"id": f"r{i + offset}", "group": None, "origin": f"x:{i}", "messages": [
            {"role": "user", "content": f"what is the capital of {country} ?"},
            {"role": "assistant", "content": f"{city} ."}]})
    return out
