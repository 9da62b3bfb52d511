"""From chat records to training tensors: chat template, answer-only labels, packing.

Each record's messages go through the base model's chat template once; the tokens of every
assistant turn (its closing end-of-turn token included, so the model learns to stop) are
the labels, everything else is ``IGNORE``. Records are then packed, best fit decreasing,
into rows of at most ``max_length`` tokens; ``position_ids`` restart at 0 for each record,
which transformers turns into a block-diagonal causal mask, so packed records never attend
to each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.errors import DataError
from ragtune.types import Message

__all__ = ["IGNORE", "Encoded", "encode_record", "pack"]

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """One record's token ids and labels (``IGNORE`` outside the answers)."""

    input_ids: list[int]
    labels: list[int]
    record_id: str = ""

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def _ids(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(list(messages), tokenize=True,
                                        add_generation_prompt=generation_prompt)
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)


def encode_record(tokenizer: Any, messages: Sequence[Message], max_length: int,
                  record_id: str = "") -> Encoded:
    """Token ids and answer-only labels for one conversation, cut to ``max_length``.

    Works with any chat template whose rendering of a conversation starts with the
    rendering of each of its prefixes (true of ChatML, Llama, Gemma and Qwen templates);
    one that is not gets a clear error.
    """
    full = _ids(tokenizer, messages, generation_prompt=False)
    labels = [IGNORE] * len(full)
    for turn, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_ids(tokenizer, messages[:turn], generation_prompt=True))
        end = len(_ids(tokenizer, messages[: turn + 1], generation_prompt=False))
        if full[:start] != _ids(tokenizer, messages[:turn], generation_prompt=True):
            raise DataError(
                f"record {record_id!r}: the chat template does not render conversations "
                "prefix by prefix, so answer tokens cannot be located; use a model whose "
                "template does (ChatML, Llama, Gemma, Qwen)")
        labels[start:end] = full[start:end]
    if len(full) > max_length:  # keep the start: the instruction, and as much answer as fits
        full, labels = full[:max_length], labels[:max_length]
    return Encoded(full, labels, record_id)


def pack(records: Sequence[Encoded], max_length: int) -> list[list[int]]:
    """Group record indices into rows of at most ``max_length`` tokens (best fit
    decreasing; a longer record is a row of its own); indices inside a row ascend."""
    order = sorted(range(len(records)), key=lambda i: -len(records[i].input_ids))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(records[i].input_ids)
        best = -1
        for r, free in enumerate(room):
            if n <= free and (best < 0 or free < room[best]):
                best = r
        if best < 0:
            rows.append([i])
            room.append(max_length - n)
        else:
            rows[best].append(i)
            room[best] -= n
    return [sorted(row) for row in rows]


def row_tensors(records: Sequence[Encoded], row: Sequence[int]) -> dict[str, Any]:
    """``input_ids``, ``labels`` and restarting ``position_ids`` for one packed row."""
    import torch

    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for i in row:
        ids += records[i].input_ids
        labels += records[i].labels
        positions += range(len(records[i].input_ids))
    return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions])}
