"""Integration tests: the real bundled models on tiny data (``make test`` installs them)."""

from __future__ import annotations

from pathlib import Path

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


OFFICE = {
    "canteen.txt": "The company canteen opens at 8 am and closes at 3 pm on weekdays. It serves "
                   "a vegetarian dish every day.",
    "parking.txt": "Employees park in the garage on Elm Street. A parking permit costs 40 euros "
                   "a month and is sold at the front desk.",
    "travel.txt": "Business trips are booked through the travel office at least two weeks "
                  "ahead. Train travel is preferred for journeys under four hours.",
}


def office_docs(folder: Path) -> Path:
    """Three short office documents (canteen, parking, travel) in ``folder``/docs."""
    docs = folder / "docs"
    docs.mkdir()
    for name, text in OFFICE.items():
        (docs / name).write_text(text)
    return docs
