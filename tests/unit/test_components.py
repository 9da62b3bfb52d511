"""The registries: a plugin's components go through the same entry points as ragtune's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ragtune.components import Registry
from ragtune.documents.loaders import LOADERS, load
from ragtune.errors import ConfigError, DocumentError
from ragtune.types import Document


def load_reversed(path: Path, source: str) -> list[Document]:
    """A plugin's loader: the file's text backwards."""
    return [Document.from_text(source, path.read_text()[::-1])]


def install(folder: Path, name: str, entry_points: str,
            monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution with only metadata and entry points, put on sys.path."""
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    monkeypatch.syspath_prepend(str(folder))


def test_a_plugin_loader_is_found_by_its_suffix(tmp_path, monkeypatch):
    notes = tmp_path / "notes.rev"
    notes.write_text("olleh")
    with pytest.raises(DocumentError, match="unsupported file type '.rev'; supported: .docx"):
        load(notes)
    install(tmp_path / "site", "reverse-loader",
            f"[ragtune.loaders]\n.rev = {__name__}:load_reversed\n", monkeypatch)
    assert ".rev" in LOADERS and ".pdf" in LOADERS
    assert load(notes)[0].text == "hello"


def test_two_packages_with_one_name_are_an_error(tmp_path, monkeypatch):
    install(tmp_path / "site", "other-pdf",
            f"[ragtune.loaders]\n.pdf = {__name__}:load_reversed\n", monkeypatch)
    with pytest.raises(ConfigError) as err:
        LOADERS[".pdf"]  # noqa: B018
    assert "two installed packages register '.pdf' in ragtune.loaders" in str(err.value)
    assert "ragtune (ragtune.documents.loaders:load_pdf)" in str(err.value)
    assert f"other-pdf ({__name__}:load_reversed)" in str(err.value)


def test_an_empty_registry_says_the_install_is_missing(monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" not in p
                                      and not p.endswith("/src")])
    with pytest.raises(ConfigError, match="package metadata is missing; install it"):
        Registry("stores", "store")["lancedb"]
    with pytest.raises(ValueError, match="unknown role 'widgets'"):
        Registry("widgets", "widget")
