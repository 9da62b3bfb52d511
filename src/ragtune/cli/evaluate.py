"""``ragtune eval`` (split, retrieval, qa), ``ragtune compare`` and ``ragtune router train``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from ragtune.cli.common import CONFIG_OPTION, JSON_OPTION, KB_OPTION, print_json, settings_from
from ragtune.errors import ConfigError
from ragtune.knowledge_base import KnowledgeBase

app = typer.Typer(help="Measure retrieval and answers on labelled questions.",
                  no_args_is_help=True)
router_app = typer.Typer(help="The layered pipeline's router.", no_args_is_help=True)

DATASET_OPTION = typer.Option(..., "--dataset",
                              help="QA JSONL, SQuAD JSON, or (retrieval) a BEIR folder.")


def _adapters(specs: list[str] | None) -> dict[str, str]:
    out = {}
    for spec in specs or []:
        name, sep, run = spec.partition("=")
        if not sep or not name or not run:
            raise ConfigError(f"--adapter {spec!r}: expected NAME=RUN, e.g. ft=runs/legal")
        if not Path(run).exists():
            raise ConfigError(f"--adapter {spec!r}: {run} does not exist")
        out[name] = run
    return out


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


def _run_compare(kb: Path, dataset: Path, arms: str, adapter: list[str] | None, out: Path,
                 reference: str | None, k: int | None, max_tokens: int | None,
                 limit: int | None, prices: Path | None, fail_under: list[str] | None,
                 config: Path | None, as_json: bool) -> None:
    from tqdm import tqdm

    from ragtune.evaluate.datasets import load_qa
    from ragtune.evaluate.harness import Prices, check_gates, compare, parse_arms, parse_gates
    from ragtune.evaluate.report import markdown, write_report

    adapters = _adapters(adapter)
    chosen = parse_arms(arms, adapters)
    gates = parse_gates(fail_under or [])
    data = load_qa(dataset)
    bars: dict[str, Any] = {}

    def progress(arm: str, done: int, total: int) -> None:
        bar = bars.get(arm)
        if bar is None:
            bar = bars[arm] = tqdm(total=total, desc=arm, unit="q", file=sys.stderr,
                                   initial=done - 1)
        bar.update(1)

    with KnowledgeBase.open(kb, settings_from(config)) as base:
        result = compare(base, data, chosen, out, adapters=adapters, reference=reference,
                         k=k, max_tokens=max_tokens, limit=limit, prices=Prices.load(prices),
                         progress=progress)
    for bar in bars.values():
        bar.close()
    paths = write_report(result, out)
    missed = check_gates(result.summary, gates)
    if as_json:
        print_json({"summary": result.summary, "report": {k: str(v) for k, v in paths.items()},
                    "gates_missed": missed})
    else:
        typer.echo(markdown(result))
        typer.echo(f"wrote {paths['html']}, {paths['json']}, {paths['md']}")
    if missed:
        for line in missed:
            typer.echo(f"gate missed: {line}", err=True)
        raise typer.Exit(2)


ARMS_HELP = ("Comma-separated arms: closed, rag, ft, ft+rag, raft, parallel, layered.")
ADAPTER_HELP = "NAME=RUN: the fine-tuned model of arms ft, ft+rag (ft) and raft (raft)."
FAIL_HELP = "ARM.METRIC=VALUE: exit 2 when an arm's mean is below it (e.g. rag.f1=0.30)."


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
    _run_compare(kb, dataset, pipeline, adapters, out, None, k, max_tokens, limit, prices,
                 fail_under, config, as_json)


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
    _run_compare(kb, dataset, arms, adapter, out, reference, k, max_tokens, limit, prices,
                 fail_under, config, as_json)


@router_app.command("train")
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


raft_app = typer.Typer(help="RAFT: retrieval-augmented fine-tuning data.", no_args_is_help=True)


@raft_app.command("build")
def raft_build(
    kb: Path = KB_OPTION,
    out: Path = typer.Option(..., "--out", help="Prepared folder for `ragtune tune lora`."),
    qa: Path = typer.Option(None, "--qa", help="Questions with answers (QA JSONL or SQuAD)."),
    exclude: list[Path] = typer.Option(None, "--exclude",
                                       help="QA files whose questions must not be trained on "
                                            "(the evaluation questions)."),
    distractors: int = typer.Option(3, "--distractors", help="Hard distractor chunks per "
                                                             "example."),
    p_oracle: float = typer.Option(0.8, "--p-oracle",
                                   help="Share of examples that keep the oracle chunk."),
    answer_style: str = typer.Option("quote", "--answer-style",
                                     help="quote (cite the supporting sentence, then "
                                          "'Answer: ...') or plain ('answer [n]')."),
    unanswerable: str = typer.Option("abstain", "--unanswerable",
                                     help="What examples without the oracle teach: abstain "
                                          "('The sources do not say.') or answer (from "
                                          "memory, as the RAFT paper)."),
    generate_questions: int = typer.Option(0, "--generate-questions",
                                           help="Without --qa: questions to write per chunk "
                                                "with the generator."),
    max_chunks: int = typer.Option(None, "--max-chunks",
                                   help="With --generate-questions: chunks to sample."),
    generator: str = typer.Option(None, "--generator", help="openai (recommended for "
                                                            "--generate-questions) or local."),
    model: str = typer.Option(None, "--model", help="Generator model name."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint URL."),
    api_key: str = typer.Option(None, "--api-key", help="API key (else OPENAI_API_KEY)."),
    base: str = typer.Option("smollm2-135m-instruct", "--base",
                             help="Model whose tokenizer counts the tokens."),
    seed: int = typer.Option(0, "--seed"),
    config: Path = CONFIG_OPTION,
) -> None:
    """Write RAFT examples: each question with its oracle chunk among hard distractors."""
    from ragtune.evaluate.datasets import load_qa, write_qa
    from ragtune.tune.raft import build_raft
    from ragtune.tune.raft import generate_questions as write_questions

    if (qa is None) == (generate_questions <= 0):
        raise ConfigError("give either --qa QA.jsonl or --generate-questions N")
    held = [item for path in exclude or [] for item in load_qa(path).items]
    settings = settings_from(config, generator={"backend": generator, "model": model,
                                                "base_url": base_url, "api_key": api_key})
    with KnowledgeBase.open(kb, settings) as knowledge:
        if qa is not None:
            items = load_qa(qa).items
        else:
            if settings.generator.backend == "local":
                typer.echo("warning: the local generator (a small bundled model) writes few "
                           "usable questions; use --generator openai --base-url URL",
                           err=True)
            items, counts = write_questions(knowledge, knowledge.generator,
                                            generate_questions, max_chunks, seed)
            typer.echo(f"generated: {counts['proposed']} pairs from {counts['chunks']} "
                       f"chunks; kept {counts['kept']}, {counts['answer_not_in_chunk']} "
                       f"dropped (answer not in its chunk), {counts['unparsed']} unparsed")
            out.parent.mkdir(parents=True, exist_ok=True)
            write_qa(items, out.parent / f"{out.name}.questions.jsonl")
            if not items:
                raise ConfigError("the generator wrote no usable question")
        info = build_raft(knowledge, items, out, distractors=distractors, p_oracle=p_oracle,
                          answer_style=answer_style, unanswerable=unanswerable,
                          exclude=held, seed=seed, base=base)
    r = info["raft"]
    typer.echo(f"RAFT: {r['written']} examples from {r['questions']} questions "
               f"({r['with_oracle']} with the oracle, {r['excluded']} excluded as evaluation "
               f"questions, {r['no_oracle_found']} without an oracle chunk)\n"
               f"split: {info['counts']['train']} train, {info['counts']['eval']} eval\n"
               f"wrote {out}/: train.jsonl, eval.jsonl, data.json, raft.json\n"
               f"train:  ragtune tune lora --data {out} --out RUN")
