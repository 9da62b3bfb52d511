"""``ragtune kb``: list, remove, stats, verify (and repair), history, reembed."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ragtune.cli.common import (
    CONFIG_OPTION,
    JSON_OPTION,
    KB_OPTION,
    display_path,
    print_json,
    settings_from,
)
from ragtune.index.maintenance import history as kb_history
from ragtune.index.maintenance import stats as kb_stats
from ragtune.knowledge_base import KnowledgeBase

app = typer.Typer(help="Inspect and maintain a knowledge base.", no_args_is_help=True)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


@app.command("list")
def list_sources(kb: Path = KB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Sources with their chunk counts, pages and ingest time."""
    with KnowledgeBase.open(kb) as base:
        records, names = base.sources(), base.display_names()
    if as_json:
        print_json({"sources": [
            {"source": r.source, "display": names[r.source], "chunks": len(r.chunk_ids),
             "pages": r.pages,
             "documents": r.documents, "bytes": r.size, "sha256": r.sha256,
             "ingested_at": r.ingested_at} for r in records]})
        return
    for r in records:
        pages = f"{r.pages} pages" if r.pages else ""
        typer.echo(f"{len(r.chunk_ids):>6} chunks  {pages:>10}  {_when(r.ingested_at)}  "
                   f"{display_path(r.source)}")
    typer.echo(f"{len(records)} sources")


@app.command("remove")
def remove(sources: list[str] = typer.Argument(..., help="Stored names, paths or globs."),
           kb: Path = KB_OPTION, config: Path = CONFIG_OPTION) -> None:
    """Remove sources and their chunks from the knowledge base."""
    with KnowledgeBase.open(kb, settings_from(config)) as base:
        removed = base.remove(sources)
    for source in removed:
        typer.echo(f"removed {display_path(source)}")


@app.command("stats")
def stats(kb: Path = KB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Counts, sizes, versions and the embedder."""
    with KnowledgeBase.open(kb) as base:
        data = kb_stats(base.index)
    if as_json:
        print_json(data)
        return
    emb = data["embedder"]
    typer.echo(f"sources: {data['sources']}\nchunks: {data['chunks']}\npages: {data['pages']}\n"
               f"version: {data['version']} ({data['store_versions']} store versions)\n"
               f"disk: {data['disk_bytes'] / 1e6:.1f} MB\n"
               f"embedder: {emb['model']} ({emb['backend']}, {emb['dimension']}-d)\n"
               f"last ingest: {_when(data['last_ingest'])}")


@app.command("verify")
def verify(kb: Path = KB_OPTION,
           repair: bool = typer.Option(False, "--repair", help="Fix what can be fixed."),
           config: Path = CONFIG_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Check that the record of sources, the store and the lexical index agree.

    Exit status 0 when they agree, 1 when they do not (each difference is listed).
    """
    with KnowledgeBase.open(kb, settings_from(config)) as base:
        report = base.verify(repair=repair)
    if as_json:
        print_json(report.to_dict())
    else:
        for line in report.repaired:
            typer.echo(f"repaired: {line}")
        for line in report.notes:
            typer.echo(f"note: {line}")
        for p in report.problems:
            ids = f" ({len(p.ids)} chunks)" if p.ids else ""
            typer.echo(f"{p.kind}: {p.detail}{ids}", err=True)
        state = "ok" if report.ok else f"{len(report.problems)} problems"
        typer.echo(f"{state}: {report.sources} sources, {report.chunks_recorded} chunks recorded, "
                   f"{report.rows_in_store} rows in the store, {report.lexical_entries} in the "
                   "lexical index")
    raise typer.Exit(0 if report.ok else 1)


@app.command("history")
def history(kb: Path = KB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Committed versions: what changed, when, and the rows at each version."""
    with KnowledgeBase.open(kb) as base:
        entries = kb_history(base.index)
    if as_json:
        print_json({"versions": entries})
        return
    for e in entries:
        details = ", ".join(f"{k}={v}" for k, v in e.items()
                            if k not in ("version", "time", "operation", "iso_time", "rows",
                                         "available"))
        typer.echo(f"v{e['version']:<5} {e['iso_time']}  {e['operation']:<8} "
                   f"rows={e['rows']}  {details}")


@app.command("reembed")
def reembed(kb: Path = KB_OPTION,
            embedder: str = typer.Option(..., "--embedder",
                                         help="Bundled embedder name or model folder."),
            config: Path = CONFIG_OPTION) -> None:
    """Embed every chunk again with another embedder and switch the knowledge base to it."""
    with KnowledgeBase.open(kb, settings_from(config)) as base:
        n = base.reembed(embedder)
    typer.echo(f"re-embedded {n} chunks with {embedder}")
