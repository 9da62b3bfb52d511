"""``ragtune ingest``: add files and folders to a knowledge base (a sync on re-runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ragtune.cli.common import CONFIG_OPTION, JSON_OPTION, KB_OPTION, print_json, settings_from
from ragtune.knowledge_base import KnowledgeBase


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and folders (read recursively)."),
    kb: Path = KB_OPTION,
    prune: bool = typer.Option(True, "--prune/--keep-missing",
                               help="Remove files that are gone from an ingested folder."),
    embedder: str = typer.Option(None, "--embedder",
                                 help="Embedder model for a new knowledge base."),
    chunk_tokens: int = typer.Option(None, "--chunk-tokens", help="Max tokens per chunk."),
    store: str = typer.Option(None, "--store",
                              help="Vector store of a new knowledge base: lancedb or qdrant."),
    qdrant_url: str = typer.Option(None, "--qdrant-url",
                                   help="Qdrant server URL (default: local mode in the folder)."),
    collection: str = typer.Option(None, "--collection", help="Qdrant collection name."),
    overlap: int = typer.Option(None, "--overlap", help="Overlap tokens between chunks."),
    wait: float = typer.Option(None, "--wait",
                               help="Seconds to wait for another writer (default 600)."),
    workers: int = typer.Option(1, "--workers", help="Embed in N processes on this machine "
                                "(this one still reads, chunks and writes)."),
    ray: str = typer.Option(None, "--ray", help="Embed on Ray actors with Ray Data: local "
                            "(a Ray instance on this machine), auto, or ray://HOST:10001; "
                            "--workers actors (pip install 'ragtune[ray]')."),
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Read .txt .md .html .pdf .docx .json .jsonl files, chunk, embed and index them.

    Exit status: 0 all files ingested, 2 some files skipped (listed), 1 nothing done.
    """
    if workers < 1:
        raise typer.BadParameter(f"must be at least 1, got {workers}", param_hint="--workers")
    settings = settings_from(config, embedder={"model": embedder},
                             chunking={"max_tokens": chunk_tokens, "overlap": overlap},
                             ingest={"lock_timeout_s": wait},
                             store={"backend": store, "url": qdrant_url,
                                    "collection": collection})
    base = KnowledgeBase.create(kb, settings, embedder=embedder or None, store=store or None)
    bar = None
    if not quiet and not as_json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="ingest", unit="file", file=sys.stderr)

    def progress(files: int, chunks: int) -> None:
        if bar is not None:
            bar.update(files - bar.n)
            rate = chunks / max(bar.format_dict["elapsed"], 1e-9)
            bar.set_postfix(chunks=chunks, chunks_per_s=f"{rate:.1f}")

    with base:
        report = base.ingest(paths, prune=prune, progress=progress, workers=workers, ray=ray)
        version = base.version
    if bar is not None:
        bar.close()
    if as_json:
        print_json({**report.to_dict(), "kb_version": version})
    else:
        typer.echo(report.summary())
        for path, reason in report.failed:
            typer.echo(f"skipped {path}: {reason}", err=True)
    raise typer.Exit(report.exit_code)
