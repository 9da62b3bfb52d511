"""Record formats of fine-tuning data: detect one per file, turn each record into chat turns.

==================  =========================================================================
format              fields of a record
==================  =========================================================================
alpaca              ``instruction``, ``input`` (optional), ``output``, ``system`` (optional),
                    ``history`` (optional list of ``[user, assistant]`` pairs before the turn)
messages            ``messages``: ``[{"role": "system"|"user"|"assistant", "content": str}]``
sharegpt            ``conversations``: ``[{"from": "human"|"gpt"|"system", "value": str}]``,
                    ``system`` (optional)
prompt_completion   ``prompt`` and ``completion``: strings, or TRL's lists of messages
template            any fields, rendered by a ``str.format`` template plus a target field
==================  =========================================================================

A converter returns the messages of one record, system first (if any), then user and
assistant turns alternating, ending with an assistant turn; or raises :class:`RecordError`
naming the field at fault.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from ragtune.errors import ConfigError

Message = dict[str, str]  # {"role": ..., "content": ...}
Converter = Callable[[dict[str, Any]], list[Message]]

FORMATS = ("alpaca", "messages", "sharegpt", "prompt_completion", "template")
ROLES = ("system", "user", "assistant")


class Example(TypedDict):
    """One normalised example, as written to ``train.jsonl`` / ``eval.jsonl``."""

    id: str
    messages: list[Message]
    group: str | None
    origin: str


_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                   "assistant": "assistant"}


class RecordError(ValueError):
    """One record is invalid; the message starts with the field at fault."""


def _kind(value: Any) -> str:
    """How a JSON value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _string(container: dict[str, Any], key: str, name: str | None = None, *,
            required: bool = True) -> str | None:
    """``container[key]`` as a non-empty string; ``None`` when optional and absent or null."""
    name = name or key
    value = container.get(key)
    if value is None:
        if required:
            got = "is missing" if key not in container else "is null"
            raise RecordError(f"field {name!r} {got}; it must be a non-empty string")
        return None
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"field {name!r} must be a non-empty string, got {_kind(value)}")
    return value


def _check_order(messages: list[Message], field: str) -> list[Message]:
    """Optional system first, then user and assistant alternating, ending with assistant.

    Chat templates such as Gemma's refuse anything else, so it is checked here, where the
    message can name the record.
    """
    expected = "user"
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "system":
            if i > 0:
                raise RecordError(f"field '{field}[{i}]' is a system message; a system "
                                  "message may only come first")
            continue
        if role != expected:
            if expected == "user" and (i == 0 or messages[i - 1]["role"] == "system"):
                raise RecordError(f"field '{field}[{i}]' is an assistant turn; the "
                                  "conversation must start with a user turn")
            raise RecordError(f"field '{field}[{i}]' is a {role} turn after a {role} turn; "
                              "user and assistant turns must alternate")
        expected = "assistant" if role == "user" else "user"
    if not any(m["role"] == "assistant" for m in messages):
        raise RecordError(f"field {field!r} has no assistant turn; it needs an answer to "
                          "train on")
    if messages[-1]["role"] != "assistant":
        raise RecordError(f"field {field!r} ends with a {messages[-1]['role']} turn; it must "
                          "end with an assistant turn (the answer to train on)")
    return messages


def _turns(items: Any, field: str, role_key: str, content_key: str,
           roles: dict[str, str]) -> list[Message]:
    """A list of ``{role_key, content_key}`` objects as messages, roles mapped by ``roles``."""
    if not isinstance(items, list) or not items:
        got = "an empty list" if items == [] else _kind(items)
        raise RecordError(f"field {field!r} must be a non-empty list of messages, got {got}")
    out: list[Message] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise RecordError(f"field {where!r} must be an object with {role_key!r} and "
                              f"{content_key!r}, got {_kind(item)}")
        role = item.get(role_key)
        if not isinstance(role, str) or role not in roles:
            raise RecordError(f"field '{where}.{role_key}' must be one of "
                              f"{', '.join(roles)}; got {role!r}")
        content = _string(item, content_key, f"{where}.{content_key}")
        out.append({"role": roles[role], "content": str(content)})
    return out


def _optional_system(record: dict[str, Any]) -> str | None:
    """The record's own ``system`` field; None when absent or blank."""
    system = record.get("system")
    if system is not None and not isinstance(system, str):
        raise RecordError(f"field 'system' must be a string, got {_kind(system)}")
    return system if system and system.strip() else None


def alpaca(record: dict[str, Any]) -> list[Message]:
    """Alpaca: the user turn is ``instruction``, plus a blank line and ``input`` when given."""
    instruction = str(_string(record, "instruction"))
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RecordError(f"field 'input' must be a string, got {_kind(extra)}")
    output = str(_string(record, "output"))
    system = _optional_system(record)
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    history = record.get("history") or []
    if not isinstance(history, list):
        raise RecordError(f"field 'history' must be a list of [user, assistant] pairs, got "
                          f"{_kind(history)}")
    for i, pair in enumerate(history):
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(isinstance(t, str) and t.strip() for t in pair)):
            raise RecordError(f"field 'history[{i}]' must be a [user, assistant] pair of "
                              "non-empty strings")
        messages += [{"role": "user", "content": pair[0]},
                     {"role": "assistant", "content": pair[1]}]
    user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    return messages


def openai_messages(record: dict[str, Any]) -> list[Message]:
    """OpenAI chat: ``messages`` as they are, checked."""
    turns = _turns(record.get("messages"), "messages", "role", "content",
                   {r: r for r in ROLES})
    return _check_order(turns, "messages")


def sharegpt(record: dict[str, Any]) -> list[Message]:
    """ShareGPT: ``conversations`` of ``{from, value}``, and an optional ``system`` field."""
    turns = _check_order(_turns(record.get("conversations"), "conversations", "from", "value",
                                _SHAREGPT_ROLES), "conversations")
    system = _optional_system(record)
    if system:
        if turns[0]["role"] == "system":
            raise RecordError("field 'system' is set and 'conversations' starts with a system "
                              "turn too; keep one of them")
        turns.insert(0, {"role": "system", "content": system})
    return turns


def prompt_completion(record: dict[str, Any]) -> list[Message]:
    """``prompt`` becomes the user turn, ``completion`` the assistant turn.

    TRL's conversational form, where both are lists of ``{role, content}``, is accepted too.
    """
    messages: list[Message] = []
    for key, role in (("prompt", "user"), ("completion", "assistant")):
        value = record.get(key)
        if isinstance(value, list):
            messages += _turns(value, key, "role", "content", {r: r for r in ROLES})
        else:
            messages.append({"role": role, "content": str(_string(record, key))})
    return _check_order(messages, "prompt + completion")


def template_fields(template: str) -> list[str]:
    """The field names a ``str.format`` template uses; ConfigError when it is not usable."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"template {template!r} is not a valid format string ({exc}); "
                          "write fields as {name} and a literal brace as {{ or }}") from None
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if conversion not in (None, "r", "s", "a"):
            raise ConfigError(f"template field {{{name}!{conversion}}} has an unknown "
                              "conversion; use !r, !s or !a, or none")
        if spec and "{" in spec:
            raise ConfigError(f"template field {{{name}:{spec}}} nests a field in its format "
                              "spec; write the format literally, such as {count:d}")
        if not name or name.isdigit() or any(c in name for c in ".[]"):
            raise ConfigError(f"template field {{{name}}} must be a plain field name of the "
                              "records, such as {original_text}")
        if name not in fields:
            fields.append(name)
    if not fields:
        raise ConfigError(f"template {template!r} uses no field; name one in braces, such as "
                          "{original_text}")
    return fields


def templated(template: str, target_field: str | None) -> Converter:
    """A converter rendering ``template`` over a record's fields as the user turn, with the
    ``target_field`` as the assistant turn."""
    fields = template_fields(template)
    if not target_field:
        raise ConfigError("a template needs a target field, the field holding the answer: "
                          "--target-field NAME")

    def convert(record: dict[str, Any]) -> list[Message]:
        for name in fields:
            if record.get(name) is None:
                got = "is missing" if name not in record else "is null"
                raise RecordError(f"field {name!r} (used by the template) {got}")
        try:
            prompt = template.format_map({name: record[name] for name in fields})
        except (ValueError, TypeError) as exc:
            raise RecordError(f"the template cannot format fields {', '.join(fields)} of this "
                              f"record ({exc}); check the format specs in the template, such "
                              "as {count:d} on a text field") from None
        if not prompt.strip():
            raise RecordError(f"the template renders an empty prompt from fields "
                              f"{', '.join(fields)}")
        answer = _string(record, target_field, f"{target_field}")
        return [{"role": "user", "content": prompt},
                {"role": "assistant", "content": str(answer)}]

    return convert


_CONVERTERS: dict[str, Converter] = {
    "alpaca": alpaca,
    "messages": openai_messages,
    "sharegpt": sharegpt,
    "prompt_completion": prompt_completion,
}


def converter(fmt: str, *, template: str | None = None,
              target_field: str | None = None) -> Converter:
    """The converter for ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown data format {fmt!r}; valid choices: auto, "
                          f"{', '.join(FORMATS)}")
    if fmt == "template":
        if not template:
            raise ConfigError("the template format needs --template, such as "
                              "\"Summarise: {original_text}\", and --target-field")
        return templated(template, target_field)
    if template or target_field:
        raise ConfigError(f"--template and --target-field apply to the template format, not "
                          f"{fmt!r}; drop them or use --format template")
    return _CONVERTERS[fmt]


def guess(record: Any) -> str | None:
    """The format a record's fields suggest, or None."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record:
        return "alpaca"
    if "prompt" in record and "completion" in record:
        return "prompt_completion"
    return None


def detect(records: Iterable[Any], limit: int = 100) -> str | None:
    """The format most of the first ``limit`` records suggest (the earliest wins a tie)."""
    votes: dict[str, int] = {}
    for i, record in enumerate(records):
        if i >= limit:
            break
        fmt = guess(record)
        if fmt is not None:
            votes[fmt] = votes.get(fmt, 0) + 1
    return max(votes, key=lambda f: votes[f]) if votes else None
