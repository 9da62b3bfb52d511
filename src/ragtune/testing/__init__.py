"""Deterministic fakes for tests: an embedder and a generator that need no model files.

They are not registered components: a test that builds them by name (``backend = "fake"``)
first calls :func:`register_fakes`, which registers them the way a plugin would.

Example:
    >>> from ragtune.testing import FakeEmbedder
    >>> FakeEmbedder().embed(["hello world"]).shape
    (1, 64)
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ragtune.config import EmbedderSettings, GeneratorSettings
from ragtune.types import Completion, Message

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Hashes words into ``dimension`` buckets (a bag of words), L2-normalised.

    Texts sharing words get positive cosine similarity, so retrieval tests are meaningful.
    One token per word.
    """

    def __init__(self, dimension: int = 64, name: str = "fake-hash") -> None:
        self.name = name
        self.dimension = dimension
        self.calls = 0
        self.texts_embedded = 0

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> FakeEmbedder:
        """The ``fake`` embedder backend once :func:`register_fakes` ran."""
        return cls(name=settings.model if settings.model.startswith("fake") else "fake-hash")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
                out[i, h % self.dimension] += 1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) or (1 if t.strip() else 0) for t in texts]


class FakeGenerator:
    """Answers with the first sentence of source [1] followed by ``[1]``.

    Tokens are whitespace-separated words (plus 2 per message). ``reply`` overrides the
    answer. Records the messages of the last call in ``last_messages``.
    """

    def __init__(self, context_window: int = 2048, reply: str | None = None,
                 name: str = "fake-generator") -> None:
        self.name = name
        self.context_window = context_window
        self.reply = reply
        self.last_messages: list[Message] = []

    @classmethod
    def from_settings(cls, settings: GeneratorSettings) -> FakeGenerator:
        """The ``fake`` generator backend once :func:`register_fakes` ran."""
        return cls(context_window=settings.context_window or settings.max_context)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) + 2 for m in messages)

    def _answer(self, messages: Sequence[Message]) -> str:
        if self.reply is not None:
            return self.reply
        user = messages[-1]["content"]
        match = re.search(r"^\[1\][^\n]*\n(.+?)(?:\n\n\[2\]|\n\n(?:Question|问题))", user,
                          re.S | re.M)
        if not match:
            return "I do not know."
        first = re.split(r"(?<=[.!?。！？])\s*", match.group(1).strip())[0]
        return f"{first} [1]"

    def generate(self, messages: Sequence[Message], *, max_tokens: int = 256,
                 temperature: float = 0.0) -> Completion:
        self.last_messages = list(messages)
        text = " ".join(self._answer(messages).split()[:max_tokens])
        return Completion(text=text, prompt_tokens=self.count_tokens(messages),
                          completion_tokens=len(text.split()))

    def stream(self, messages: Sequence[Message], *, max_tokens: int = 256,
               temperature: float = 0.0) -> Iterator[str]:
        words = self.generate(messages, max_tokens=max_tokens).text.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word


FAKES_ENTRY_POINTS = """\
[ragtune.generators]
fake = ragtune.testing:FakeGenerator.from_settings

[ragtune.embedders]
fake = ragtune.testing:FakeEmbedder.from_settings
"""


def register_fakes(folder: Path) -> str:
    """Register the fakes as the ``fake`` generator and embedder backends: write a plugin
    distribution (``ragtune-testing-fakes``, entry points only) into ``folder`` and put the
    folder on ``sys.path``. Returns a ``PYTHONPATH`` value that lets a subprocess see them
    too (``ragtune`` run as a command); spawned workers inherit ``sys.path``.

    Example::

        env = {**os.environ, "PYTHONPATH": register_fakes(tmp_path / "fakes"),
               "RAGTUNE_GENERATOR_BACKEND": "fake"}
    """
    info = folder / "ragtune_testing_fakes-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ragtune-testing-fakes\nVersion: 0\n")
    (info / "entry_points.txt").write_text(FAKES_ENTRY_POINTS)
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    return os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
