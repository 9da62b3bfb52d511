"""A model's tokenizer and chat template read with ``tokenizers`` and ``jinja2`` alone.

The llama.cpp generator needs a tokenizer only to write the prompt (the chat template),
count tokens and send ids. transformers builds gemma-3's tokenizer from its 33 MB
``tokenizer.json`` in Python (about 2.7 s a process on 2 cores); the Rust ``tokenizers``
library reads the same file in about 1 s, and the template is plain Jinja, rendered the
way transformers renders it (trimmed blocks, the special tokens as variables). A folder
this cannot read in the same way (no ``tokenizer.json``, a template that needs
transformers' own Jinja extensions) is loaded with transformers' ``AutoTokenizer``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.types import Message


class ChatTokenizer:
    """The subset of a transformers tokenizer that prompting needs, without transformers.

    Example:
        >>> tok = load_chat_tokenizer(folder)  # doctest: +SKIP
        >>> tok.apply_chat_template([{"role": "user", "content": "Hi"}],
        ...                         add_generation_prompt=True, tokenize=False)  # doctest: +SKIP
    """

    def __init__(self, folder: Path) -> None:
        import jinja2
        import jinja2.ext
        import jinja2.sandbox
        import tokenizers

        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        template_file = folder / "chat_template.jinja"
        template = (template_file.read_text(encoding="utf-8") if template_file.exists()
                    else config.get("chat_template"))
        if not isinstance(template, str):
            raise ValueError(f"{folder} has no single chat template")
        self._tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.special = {key: _content(value) for key, value in config.items()
                        if key.endswith("_token") and _content(value) is not None}
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = _strftime_now  # Llama 3's templates write the date
        self._template = env.from_string(template)  # a transformers-only tag fails here

    def apply_chat_template(self, messages: Sequence[Message], *,
                            add_generation_prompt: bool = True, tokenize: bool = False) -> str:
        if tokenize:
            raise ValueError("ChatTokenizer writes the prompt as text; encode it after")
        return self._template.render(messages=list(messages),
                                     add_generation_prompt=add_generation_prompt,
                                     **self.special)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text, add_special_tokens)}

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=False))


def load_chat_tokenizer(folder: Path) -> Any:
    """A :class:`ChatTokenizer` for ``folder``, or transformers' own tokenizer where the
    folder needs it (see the module's note)."""
    if (folder / "tokenizer.json").exists() and (folder / "tokenizer_config.json").exists():
        try:
            return ChatTokenizer(folder)
        except Exception:  # jinja syntax transformers extends, an odd config: its loader
            pass
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _content(value: Any) -> str | None:
    """A special token's text: a string, or an added token's ``content``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(format: str) -> str:
    from datetime import datetime

    return datetime.now().strftime(format)


def _raise(message: str) -> None:
    import jinja2

    raise jinja2.exceptions.TemplateError(message)
