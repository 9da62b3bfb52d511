"""The train / eval split: deterministic, and never splitting a group across the two."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from ragtune.errors import ConfigError, DataError
from ragtune.tune.formats import Example


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def split_examples(examples: Sequence[Example], fraction: float, *,
                   seed: int = 0) -> tuple[list[Example], list[Example]]:
    """``(train, eval)``: about ``fraction`` of the examples held out for evaluation.

    Examples with a group move together, so no group is on both sides; without groups each
    example moves alone. Units are taken in an order fixed by ``seed`` and a hash of the
    group (or of the messages), so the split does not depend on the input order, and added
    while they bring the held-out count nearer ``fraction * len(examples)``. With
    ``fraction > 0`` both sides get at least one unit. Both lists keep the input order.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"the eval split must be a fraction in [0, 1), got {fraction}")
    units: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        key = (f"group:{ex['group']}" if ex["group"] is not None
               else "messages:" + json.dumps(ex["messages"], ensure_ascii=False))
        units.setdefault(key, []).append(i)
    if fraction == 0:
        return list(examples), []
    grouped = any(ex["group"] is not None for ex in examples)
    if len(units) < 2:
        what = (f"all {len(examples)} examples are in one group ({examples[0]['group']!r})"
                if grouped else f"there is {len(examples)} example")
        raise DataError(f"an eval split of {fraction} needs at least 2 "
                        f"{'groups' if grouped else 'examples'}, but {what}; "
                        f"{'group by another field, ' if grouped else 'add data, '}"
                        "or use --split 0 to train on everything")
    order = sorted(units, key=lambda k: _rank(seed, k))
    target = fraction * len(examples)
    held: list[str] = []
    count = 0
    for key in order:
        size = len(units[key])
        if len(held) < len(units) - 1 and abs(count + size - target) < abs(count - target):
            held.append(key)
            count += size
    if not held:  # the target is under half the smallest unit: hold out the nearest one
        held.append(min(order, key=lambda k: abs(len(units[k]) - target)))
    eval_idx = {i for key in held for i in units[key]}
    return ([ex for i, ex in enumerate(examples) if i not in eval_idx],
            [ex for i, ex in enumerate(examples) if i in eval_idx])
