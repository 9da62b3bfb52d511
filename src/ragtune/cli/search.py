"""``ragtune search``: ranked chunks for a query."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import (
    CONFIG_OPTION,
    JSON_OPTION,
    KB_OPTION,
    MMR_OPTION,
    PAGES_OPTION,
    RERANK_OPTION,
    SINCE_OPTION,
    SOURCE_OPTION,
    UNTIL_OPTION,
    make_filter,
    print_json,
    settings_from,
)
from ragtune.display import relabel_hits
from ragtune.knowledge_base import KnowledgeBase


def search(
    query: str = typer.Argument(..., help="What to look for."),
    kb: Path = KB_OPTION,
    mode: str = typer.Option(None, "--mode", help="hybrid (default), dense or lexical."),
    k: int = typer.Option(None, "-k", help="How many hits (default 10)."),
    source: str = SOURCE_OPTION,
    pages: str = PAGES_OPTION,
    since: str = SINCE_OPTION,
    until: str = UNTIL_OPTION,
    rerank: str = RERANK_OPTION,
    mmr: float = MMR_OPTION,
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the best-matching chunks with their source, page and score."""
    settings = settings_from(config, retrieval={"mode": mode, "reranker": rerank,
                                                "mmr_lambda": mmr})
    with KnowledgeBase.open(kb, settings) as base:
        hits = relabel_hits(base.search(query, k=k or 10,
                                        filter=make_filter(source, pages, since, until)),
                            base.display_names())
    if as_json:
        print_json({"hits": [h.to_dict() for h in hits]})
        return
    for rank, hit in enumerate(hits, start=1):
        c = hit.chunk
        where = c.source + (f", page {c.page}" if c.page else "")
        text = " ".join(c.text.split())
        typer.echo(f"{rank:>2}. [{hit.score:.4f}] {where}\n    {text[:300]}")
