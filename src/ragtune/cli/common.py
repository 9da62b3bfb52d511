"""What the commands share: settings from flags, error reporting, display of paths."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from ragtune.config import Settings, load_settings
from ragtune.errors import RagtuneError
from ragtune.retrieve.filters import Filter, parse_pages, parse_time

KB_OPTION = typer.Option(..., "--kb", help="Knowledge-base folder.")
CONFIG_OPTION = typer.Option(None, "--config", help="Settings file (default: ./ragtune.toml).")
DECODER_OPTION = typer.Option(
    None, "--decoder", help="Local models: auto (exact fp32 loop, default), exact, fp16 "
                            "(fp16 weights, fp32 activations), fast (4-bit weights, bf16 "
                            "steps) or transformers.")
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")


SOURCE_OPTION = typer.Option(None, "--source", help="Only sources matching this glob.")
PAGES_OPTION = typer.Option(None, "--pages", help="Only these pages: 7 or 3-7.")
SINCE_OPTION = typer.Option(None, "--since", help="Only chunks ingested since (ISO date).")
UNTIL_OPTION = typer.Option(None, "--until", help="Only chunks ingested until (ISO date).")
RERANK_OPTION = typer.Option(None, "--rerank", help="CrossEncoder folder to rerank with.")
MMR_OPTION = typer.Option(None, "--mmr", help="MMR diversity, lambda in [0, 1].")


def make_filter(source: str | None, pages: str | None, since: str | None,
                until: str | None) -> Filter | None:
    f = Filter(source=source, pages=parse_pages(pages) if pages else None,
               since=parse_time(since) if since else None,
               until=parse_time(until) if until else None)
    return None if f.empty else f


def run_safely(app: Any) -> None:
    """Run the app; a RagtuneError prints ``error: ...`` and exits 1 (no traceback), as does
    an OS error a user can act on (disk full, read-only, ...: what to do). Any
    other exception is a bug or an unforeseen input: one line names it, and
    ``RAGTUNE_TRACEBACK=1`` shows where it came from."""
    try:
        app(standalone_mode=True)
    except RagtuneError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("RAGTUNE_TRACEBACK"):
            raise
        if isinstance(exc, OSError) and exc.errno in OS_ADVICE:
            typer.echo(f"error: {os_error_message(exc)}", err=True)
            sys.exit(1)
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc}. Nothing more was done; "
                   "rerun with RAGTUNE_TRACEBACK=1 to see where it happened, and report it "
                   "if the input looks valid", err=True)
        sys.exit(1)


_FULL = ("the disk is full", "free some space (or put the knowledge base on another disk) "
          "and run it again")
OS_ADVICE: dict[int, tuple[str, str]] = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: ("the disk quota is used up", _FULL[1]),
    errno.EROFS: ("the file system is read-only",
                  "use a folder on a writable disk (for example --kb in your home folder)"),
    errno.EACCES: ("permission denied",
                   "check who owns the path, or use a folder you can write to"),
    errno.EPERM: ("operation not permitted", "check who owns the path, or use another folder"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder",
                    "choose a path whose parents are all folders"),
    errno.EISDIR: ("the path is a folder where a file was expected", "give the path of a file"),
    errno.ENAMETOOLONG: ("the name is too long for the file system", "choose a shorter path"),
    errno.EMFILE: ("too many files are open", "raise the limit (ulimit -n) and run it again"),
}


def os_error_message(exc: OSError) -> str:
    """What happened, on which path, and what to do: for an OS error a user can act on.
    Writes to a knowledge base commit all at once, so what it held before stays as it was."""
    what, todo = OS_ADVICE[exc.errno]  # type: ignore[index]
    where = f" ({exc.filename})" if exc.filename else ""
    return (f"{what}{where}. Nothing more was done, and what a knowledge base held before is "
            f"kept; {todo}.")


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
