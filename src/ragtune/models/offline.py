"""Keep every model load off the network: no hub, no telemetry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_PARALLELISM = "TOKENIZERS_PARALLELISM"
_parallelism_ours = False  # whether ensure_offline set TOKENIZERS_PARALLELISM (not the user)


def ensure_offline() -> None:
    """Set the Hugging Face offline switches before transformers is first used.

    Called by every function that loads a model (never at import time). ``setdefault``
    leaves a user's explicit choice alone; we also pass ``local_files_only=True``.
    """
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    global _parallelism_ours
    if _PARALLELISM not in os.environ:
        # the fast tokenizers' threads stay off by default: a process that forks after
        # using them gets a warning and a tokenizer without threads (bulk_tokenizing below
        # turns them on for one call)
        os.environ[_PARALLELISM] = "false"
        _parallelism_ours = True


@contextmanager
def bulk_tokenizing() -> Iterator[None]:
    """Let the fast tokenizers spread one large batch over every core.

    Tokenizing a group of several hundred texts on both cores of a laptop halves its time
    (BERT's WordPiece tokenizer reads about 300,000 tokens a second on one). Only where
    ragtune itself switched the threads off; a user's ``TOKENIZERS_PARALLELISM`` stands.
    The variable is back to ``false`` afterwards, so a later fork neither warns nor
    deadlocks (the tokenizers library checks that the variable is set).
    """
    if not _parallelism_ours or os.environ.get(_PARALLELISM) != "false":
        yield
        return
    os.environ[_PARALLELISM] = "true"
    try:
        yield
    finally:
        os.environ[_PARALLELISM] = "false"
