"""Integration tests: the real bundled models on tiny data (``make test`` installs them)."""

from __future__ import annotations

import pytest

from ragtune.models.embedders import SentenceTransformerEmbedder
from ragtune.models.local_generator import LocalGenerator


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-minilm-l6-v2")


@pytest.fixture(scope="session")
def generator() -> LocalGenerator:
    return LocalGenerator("smollm2-135m-instruct", max_context=2048)
