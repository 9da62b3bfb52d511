"""``ragtune router train``: the layered pipeline's router, trained on compare results."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ragtune.cli.common import CONFIG_OPTION, KB_OPTION, settings_from
from ragtune.errors import ConfigError
from ragtune.knowledge_base import KnowledgeBase

app = typer.Typer(help="The layered pipeline's router.", no_args_is_help=True)


@app.command("train")
def router_train(
    results: Path = typer.Option(..., "--from",
                                 help="report.json of `ragtune compare` with several arms."),
    kb: Path = KB_OPTION,
    out: Path = typer.Option(None, "--out",
                             help="Router file (default: router.json in the knowledge base, "
                                  "which `ask --pipeline layered` then uses)."),
    correct_f1: float = typer.Option(0.5, "--correct-f1",
                                     help="Token F1 from which an answer counts as right."),
    no_embedding: bool = typer.Option(False, "--no-embedding",
                                      help="Query features and retrieval scores only."),
    config: Path = CONFIG_OPTION,
) -> None:
    """Train the layered router on evaluation outcomes: per question, the cheapest strategy
    that answered it right (abstain for unanswerable questions none should answer)."""
    from ragtune.pipelines.router import ROUTER_FILE, labels_from_results, train_router

    try:
        report = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{results}: not a readable report.json ({exc})") from exc
    questions, labels = labels_from_results(report, correct_f1)
    with KnowledgeBase.open(kb, settings_from(config)) as base:
        k = int(report.get("config", {}).get("k") or base.settings.retrieval.k)
        hits = [base.search(q, k=k) for q in questions]
        vectors = None if no_embedding else base.embedder.embed(questions)
        router = train_router(questions, hits, labels, vectors)
        target = out or base.path / ROUTER_FILE
    router.info["source"] = str(results)
    router.save(target)
    counts = ", ".join(f"{k} {v}" for k, v in router.info["labels"].items())
    skipped = len(report["questions"]) - len(labels)
    typer.echo(f"trained on {len(labels)} questions ({counts}); training accuracy "
               f"{router.info['train_accuracy']:.2f}"
               + (f"; {skipped} answerable question{'s' * (skipped != 1)} no arm got right "
                  "left out" if skipped else "") + f"\nwrote {target}")
