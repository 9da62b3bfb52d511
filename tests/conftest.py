from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("RAGTUNE_DATA", Path(__file__).resolve().parents[1].parent
                           / "shared" / "datasets"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                    request: pytest.FixtureRequest) -> None:
    """Unit tests never touch the user's cache or a ragtune.toml in the working folder."""
    if "integration" not in str(request.node.fspath):
        monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    for key in list(os.environ):
        if key.startswith("RAGTUNE_") and key not in ("RAGTUNE_CACHE_DIR", "RAGTUNE_DATA"):
            monkeypatch.delenv(key)


def dataset(*parts: str) -> Path:
    """A path under the shared datasets folder, or skip the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset {path} not found (set RAGTUNE_DATA to the datasets folder)")
    return path
