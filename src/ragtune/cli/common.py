"""What the commands share: settings from flags, error reporting, display of paths."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from ragtune.config import Settings, load_settings
from ragtune.errors import RagtuneError

KB_OPTION = typer.Option(..., "--kb", help="Knowledge-base folder.")
CONFIG_OPTION = typer.Option(None, "--config", help="Settings file (default: ./ragtune.toml).")
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")


def run_safely(app: Any) -> None:
    """Run the app; a RagtuneError prints ``error: ...`` and exits 1 (no traceback)."""
    try:
        app(standalone_mode=True)
    except RagtuneError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


def settings_from(config: Path | None, **sections: dict[str, Any]) -> Settings:
    return load_settings(config, overrides=sections)


def display_path(source: str) -> str:
    """A source path relative to the working folder when it is inside it."""
    try:
        return os.path.relpath(source) if not os.path.relpath(source).startswith("..") else source
    except ValueError:
        return source


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
