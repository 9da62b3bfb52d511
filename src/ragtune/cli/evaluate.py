"""``ragtune eval``: split questions, score retrieval, score one arm's answers (qa)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ragtune.cli.common import CONFIG_OPTION, JSON_OPTION, KB_OPTION, print_json, settings_from
from ragtune.cli.compare import ARMS_HELP, DATASET_OPTION, FAIL_HELP, run_compare
from ragtune.knowledge_base import KnowledgeBase

app = typer.Typer(help="Measure retrieval and answers on labelled questions.",
                  no_args_is_help=True)


@app.command("split")
def split(
    dataset: Path = typer.Argument(..., help="QA JSONL or SQuAD JSON."),
    out: Path = typer.Option(..., "--out", help="Folder for train.jsonl, test.jsonl and "
                                                "split.json."),
    by: str = typer.Option("question", "--by",
                           help="question: within each document (knowledge injection); "
                                "document: whole documents (generalisation)."),
    test: float = typer.Option(0.5, "--test", help="Share of questions (or documents) held "
                                                    "out for testing."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Split questions into train and test, by question or by document."""
    from ragtune.evaluate.datasets import load_qa, split_items, write_qa

    data = load_qa(dataset)
    train, held = split_items(data.items, by, test, seed)
    out.mkdir(parents=True, exist_ok=True)
    write_qa(train, out / "train.jsonl")
    write_qa(held, out / "test.jsonl")
    docs = {part: len({i.doc or i.source or i.id for i in items})
            for part, items in (("train", train), ("test", held))}
    info = {"dataset": data.describe(), "by": by, "test": test, "seed": seed,
            "train": len(train), "test_questions": len(held), "documents": docs,
            "shared_documents": len({i.doc for i in train} & {i.doc for i in held} - {None})}
    (out / "split.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    typer.echo(f"split by {by}: {len(train)} train, {len(held)} test questions; documents "
               f"{docs['train']} train, {docs['test']} test, {info['shared_documents']} on "
               f"both sides\nwrote {out}/: train.jsonl, test.jsonl, split.json")


@app.command("retrieval")
def retrieval(
    kb: Path = KB_OPTION,
    dataset: Path = DATASET_OPTION,
    split: str = typer.Option("test", "--split", help="BEIR qrels split."),
    k: int = typer.Option(10, "-k", help="Cut-off for recall and MRR."),
    depth: int = typer.Option(100, "--depth", help="Chunks retrieved per query."),
    mode: str = typer.Option(None, "--mode", help="hybrid (default), dense or lexical."),
    limit: int = typer.Option(None, "--limit", help="Only the first N queries."),
    out: Path = typer.Option(None, "--out", help="Write per-query results to this JSON file."),
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Recall@k, MRR and nDCG@10 of the knowledge base on labelled queries."""
    from ragtune.evaluate.retrieval import evaluate_retrieval

    with KnowledgeBase.open(kb, settings_from(config)) as base:
        result = evaluate_retrieval(base, dataset, split=split, k=k, depth=depth, mode=mode,
                                    limit=limit)
    if out:
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    if as_json:
        print_json({k: v for k, v in result.items() if k != "per_query"})
        return
    typer.echo(f"{result['queries']} queries, {result['mode']} retrieval:")
    for name, value in result["mean"].items():
        typer.echo(f"  {name:<12} {value:.4f}")


@app.command("qa")
def qa(
    kb: Path = KB_OPTION,
    dataset: Path = DATASET_OPTION,
    pipeline: str = typer.Option("rag", "--pipeline", help=ARMS_HELP),
    adapter: str = typer.Option(None, "--adapter", help="LoRA run folder for the arm."),
    out: Path = typer.Option(..., "--out", help="Folder for answers and the report."),
    k: int = typer.Option(None, "-k", help="Chunks to retrieve (default 5)."),
    max_tokens: int = typer.Option(None, "--max-tokens"),
    limit: int = typer.Option(None, "--limit", help="Only the first N questions."),
    prices: Path = typer.Option(None, "--prices", help="Price table JSON."),
    fail_under: list[str] = typer.Option(None, "--fail-under", help=FAIL_HELP),
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Answer a dataset's questions with one arm and score the answers."""
    adapters = []
    if adapter:
        from ragtune.evaluate.harness import ARMS

        arm = ARMS.get(pipeline)
        adapters = [f"{arm.adapter_key if arm and arm.adapter_key else 'ft'}={adapter}"]
    run_compare(kb, dataset, pipeline, adapters, out, None, k, max_tokens, limit, prices,
                fail_under, config, as_json)
