"""The chat tokenizer on a tiny folder: the template's variables, and when it hands over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from ragtune.models.chat_tokenizer import ChatTokenizer, load_chat_tokenizer

TEMPLATE = ("{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] | trim }}"
            "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")


def folder(tmp_path: Path, template: str | None, *, config_template: bool = False) -> Path:
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "hello": 3, "world": 4}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    config: dict[str, object] = {"bos_token": "<s>", "eos_token": {"content": "</s>"},
                                 "model_max_length": 512}
    if template is not None and config_template:
        config["chat_template"] = template
    elif template is not None:
        (tmp_path / "chat_template.jinja").write_text(template, encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("in_config", [False, True])
def test_the_template_gets_the_special_tokens_and_trims_blocks(tmp_path: Path,
                                                               in_config: bool) -> None:
    tok = ChatTokenizer(folder(tmp_path, TEMPLATE, config_template=in_config))
    prompt = tok.apply_chat_template([{"role": "user", "content": " hello world "}])
    assert prompt == "<s><user>hello world</s>\n<assistant>"
    assert tok.apply_chat_template([{"role": "user", "content": "hello"}],
                                   add_generation_prompt=False) == "<s><user>hello</s>\n"
    assert tok.encode("hello world nope") == [3, 4, 0]
    assert tok("hello")["input_ids"] == [3]
    assert tok.decode([3, 4]) == "hello world"


def test_templates_get_transformers_helpers(tmp_path: Path) -> None:
    from datetime import datetime

    tok = ChatTokenizer(folder(tmp_path, "{{ strftime_now('%Y') }} {{ messages | tojson }}"))
    assert tok.apply_chat_template([{"role": "user", "content": "é"}]) == \
        f'{datetime.now():%Y} [{{"role": "user", "content": "é"}}]'


def test_a_template_error_raises_its_message(tmp_path: Path) -> None:
    import jinja2

    tok = ChatTokenizer(folder(tmp_path, "{{ raise_exception('roles must alternate') }}"))
    with pytest.raises(jinja2.exceptions.TemplateError, match="roles must alternate"):
        tok.apply_chat_template([{"role": "user", "content": "hello"}])


def test_folders_it_cannot_read_alike_go_to_transformers(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    handed: list[str] = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        lambda path, **_: handed.append(path) or "transformers' own")
    # transformers' own Jinja tag ({% generation %}) and a folder without a template
    for i, template in enumerate(["{% generation %}{{ m }}{% endgeneration %}", None]):
        (tmp_path / str(i)).mkdir()
        assert load_chat_tokenizer(folder(tmp_path / str(i), template)) == "transformers' own"
    assert len(handed) == 2
    assert isinstance(load_chat_tokenizer(folder(tmp_path, TEMPLATE)), ChatTokenizer)
