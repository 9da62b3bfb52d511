"""``ragtune compare``: every arm answers the same questions (``ragtune.evaluate.compare``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ragtune.cli.common import CONFIG_OPTION, JSON_OPTION, KB_OPTION, print_json, settings_from
from ragtune.errors import ConfigError
from ragtune.knowledge_base import KnowledgeBase

DATASET_OPTION = typer.Option(..., "--dataset",
                              help="QA JSONL, SQuAD JSON, or (retrieval) a BEIR folder.")
ARMS_HELP = ("Comma-separated arms: closed, rag, ft, ft+rag, raft, parallel, layered.")
ADAPTER_HELP = "NAME=RUN: the fine-tuned model of arms ft, ft+rag (ft) and raft (raft)."
FAIL_HELP = "ARM.METRIC=VALUE: exit 2 when an arm's mean is below it (e.g. rag.f1=0.30)."


def _adapters(specs: list[str] | None) -> dict[str, str]:
    out = {}
    for spec in specs or []:
        name, sep, run = spec.partition("=")
        if not sep or not name or not run:
            raise ConfigError(f"--adapter {spec!r}: expected NAME=RUN, e.g. ft=runs/legal")
        out[name] = run
    return out


def run_compare(kb: Path, dataset: Path, arms: str, adapter: list[str] | None, out: Path,
                reference: str | None, k: int | None, max_tokens: int | None,
                limit: int | None, prices: Path | None, fail_under: list[str] | None,
                config: Path | None, as_json: bool) -> None:
    """Run :func:`ragtune.evaluate.compare` with progress bars, print the report, and exit 2
    when a gate is missed."""
    from tqdm import tqdm

    from ragtune.evaluate import compare
    from ragtune.evaluate.report import markdown

    bars: dict[str, Any] = {}

    def progress(arm: str, done: int, total: int) -> None:
        bar = bars.get(arm)
        if bar is None:
            bar = bars[arm] = tqdm(total=total, desc=arm, unit="q", file=sys.stderr,
                                   initial=done - 1)
        bar.update(1)

    with KnowledgeBase.open(kb, settings_from(config)) as base:
        result = compare(base, dataset, arms, out, adapters=_adapters(adapter),
                         reference=reference, k=k, max_tokens=max_tokens, limit=limit,
                         prices=prices, fail_under=fail_under or [], progress=progress)
    for bar in bars.values():
        bar.close()
    paths = result.report
    if as_json:
        print_json({"summary": result.summary, "report": {k: str(v) for k, v in paths.items()},
                    "gates_missed": result.gates_missed})
    else:
        typer.echo(markdown(result.comparison))
        typer.echo(f"wrote {paths['html']}, {paths['json']}, {paths['md']}")
    if result.gates_missed:
        for line in result.gates_missed:
            typer.echo(f"gate missed: {line}", err=True)
        raise typer.Exit(2)


def compare_command(
    kb: Path = KB_OPTION,
    dataset: Path = DATASET_OPTION,
    arms: str = typer.Option("closed,rag", "--arms", help=ARMS_HELP),
    adapter: list[str] = typer.Option(None, "--adapter", help=ADAPTER_HELP),
    out: Path = typer.Option(..., "--out", help="Folder for answers and the report."),
    reference: str = typer.Option(None, "--reference",
                                  help="Arm the others are compared with (default rag)."),
    k: int = typer.Option(None, "-k", help="Chunks to retrieve (default 5)."),
    max_tokens: int = typer.Option(None, "--max-tokens"),
    limit: int = typer.Option(None, "--limit", help="Only the first N questions."),
    prices: Path = typer.Option(None, "--prices",
                                help='Price table JSON: {"local_hour": 0.1, '
                                     '"prompt_per_1m": 0, "completion_per_1m": 0}.'),
    fail_under: list[str] = typer.Option(None, "--fail-under", help=FAIL_HELP),
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Every arm answers the same questions: scores with intervals, latency, cost, report."""
    run_compare(kb, dataset, arms, adapter, out, reference, k, max_tokens, limit, prices,
                fail_under, config, as_json)
