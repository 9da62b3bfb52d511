"""Shared by the unit tests: the two-document knowledge base (fake models) of the pipeline
tests; a module with its own `kb` fixture uses that one."""

import pytest

from ragtune import KnowledgeBase
from ragtune.testing import FakeEmbedder, FakeGenerator


@pytest.fixture
def kb(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "vacation.txt").write_text(
        "Every employee receives 25 days of paid vacation per year.")
    (folder / "tower.md").write_text("The Eiffel Tower was completed in 1889.")
    base = KnowledgeBase.create(tmp_path / "kb", embedder=FakeEmbedder(),
                                generator=FakeGenerator())
    base.ingest([folder])
    return base
