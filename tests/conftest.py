from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

DATA = Path(os.environ.get("RAGTUNE_DATA", Path(__file__).resolve().parents[1].parent
                           / "shared" / "datasets"))
_FAKES = Path(tempfile.mkdtemp(prefix="ragtune-fakes-"))


def pytest_configure(config: pytest.Config) -> None:
    """The fake generator and embedder become the ``fake`` backends for every test, and for
    the ``ragtune`` commands the tests run (PYTHONPATH); a user's install never has them."""
    from ragtune.testing import register_fakes

    os.environ["PYTHONPATH"] = register_fakes(_FAKES)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_FAKES, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                    request: pytest.FixtureRequest) -> None:
    """Unit tests never touch the user's cache or a ragtune.toml in the working folder."""
    if "integration" not in str(request.node.fspath):
        monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    for key in list(os.environ):
        if key.startswith("RAGTUNE_") and key not in ("RAGTUNE_CACHE_DIR", "RAGTUNE_DATA"):
            monkeypatch.delenv(key)


@pytest.fixture
def kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A two-document knowledge base with the fake models (the pipeline, layered and
    server tests); a module with its own ``kb`` fixture uses that one."""
    from ragtune import KnowledgeBase
    from ragtune.testing import FakeEmbedder, FakeGenerator

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "vacation.txt").write_text(
        "Every employee receives 25 days of paid vacation per year.")
    (folder / "tower.md").write_text("The Eiffel Tower was completed in 1889.")
    base = KnowledgeBase.create(tmp_path / "kb", embedder=FakeEmbedder(),
                                generator=FakeGenerator())
    base.ingest([folder])
    return base


def dataset(*parts: str) -> Path:
    """A path under the shared datasets folder, or skip the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset {path} not found (set RAGTUNE_DATA to the datasets folder)")
    return path


# --- a tiny random Llama with a ChatML word-level tokenizer: a real model folder in
# milliseconds, for the trainer's unit tests and the fine-tuning CLI tests ----------

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
WORDS = ("system user assistant what is the capital of france germany spain italy paris "
         "berlin madrid rome answer question a an and it city country").split()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
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
