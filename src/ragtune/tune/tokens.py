"""Token statistics of examples rendered with a model's chat template."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ragtune.errors import ConfigError, DataError
from ragtune.tune.formats import Example, Message


class ChatTokenizer(Protocol):
    """What token statistics need of a tokenizer: a Hugging Face tokenizer satisfies it."""

    def apply_chat_template(self, conversation: list[Message], *, tokenize: bool = ...,
                            add_generation_prompt: bool = ...) -> Any: ...


# A plain callable works too: (messages, add_generation_prompt) -> token ids or their count.
TokenCounter = Callable[[list[Message], bool], Sequence[int] | int]


def _counter(tokenizer: ChatTokenizer | TokenCounter) -> Callable[[list[Message], bool], int]:
    """``count(messages, add_generation_prompt)``: the token count of the rendered chat."""

    def length(out: Any) -> int:
        if isinstance(out, int):
            return out
        if isinstance(out, Mapping):  # transformers 5 returns a BatchEncoding
            out = out["input_ids"]
        return len(out)

    if hasattr(tokenizer, "apply_chat_template"):
        template = tokenizer.apply_chat_template
        return lambda m, gen: length(template(m, tokenize=True, add_generation_prompt=gen))
    if callable(tokenizer):
        return lambda m, gen: length(tokenizer(m, gen))
    raise ConfigError(f"tokenizer must have apply_chat_template or be a callable "
                      f"(messages, add_generation_prompt) -> token ids; got "
                      f"{type(tokenizer).__name__}")


def _summary(values: list[int]) -> dict[str, float] | None:
    """min / mean / p50 / p95 / max; percentiles by the nearest-rank method."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: float) -> int:
        return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]

    return {"min": ordered[0], "mean": round(sum(ordered) / len(ordered), 1), "p50": rank(50),
            "p95": rank(95), "max": ordered[-1]}


def token_stats(examples: Sequence[Example],
                tokenizer: ChatTokenizer | TokenCounter) -> dict[str, Any]:
    """Token counts of examples rendered with the tokenizer's chat template.

    An example's tokens are those of its whole rendered conversation; its answer tokens
    are, for each assistant turn, the tokens the turn adds to the conversation before it
    rendered with the generation prompt (so the answer's end-of-turn token counts, the
    assistant header does not).
    """
    count = _counter(tokenizer)
    totals: list[int] = []
    answers: list[int] = []
    for ex in examples:
        messages = ex["messages"]
        try:
            total = count(messages, False)
            answer = sum((total if i == len(messages) - 1 else count(messages[:i + 1], False))
                         - count(messages[:i], True)
                         for i, m in enumerate(messages) if m["role"] == "assistant")
        except Exception as exc:  # a chat template may raise anything (jinja, ValueError)
            raise DataError(f"{ex['origin']}: the chat template could not render this "
                            f"example: {exc}") from exc
        totals.append(total)
        answers.append(max(answer, 0))
    return {"examples": len(totals), "tokens": sum(totals), "answer_tokens": sum(answers),
            "tokens_per_example": _summary(totals),
            "answer_tokens_per_example": _summary(answers)}
