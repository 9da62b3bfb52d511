"""``ragtune advise`` and ``ragtune profile``: which approach to use, and what the data shows."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ragtune.advise import CostModel, Profile, advise, ask_missing, load_report, measure, render
from ragtune.advise.text import check_lang
from ragtune.cli.common import JSON_OPTION, print_json


def _flags(**values: object) -> Profile:
    return Profile.from_mapping({k: v for k, v in values.items() if v is not None},
                                where="flags")


def advise_command(
    profile: Path = typer.Option(None, "--profile", help="TOML profile (from `ragtune "
                                 "profile --out` or written by hand)."),
    change: str = typer.Option(None, "--change", help="How often the knowledge changes: "
                               "hourly, daily, weekly, monthly, quarterly, yearly, static."),
    expertise: str = typer.Option(None, "--expertise", help="lookup (facts), mixed, or expert "
                                  "(reasoning and domain style)."),
    sources: str = typer.Option(None, "--sources", help="Must answers show sources: required, "
                                "preferred, not-needed."),
    queries_per_month: float = typer.Option(None, "--queries-per-month"),
    budget_initial: float = typer.Option(None, "--budget-initial",
                                         help="In the cost model's currency (CNY by default)."),
    budget_monthly: float = typer.Option(None, "--budget-monthly"),
    latency_ms: float = typer.Option(None, "--latency-ms", help="Latency budget per request."),
    labelled: int = typer.Option(None, "--labelled", help="Labelled examples available."),
    gpu: bool = typer.Option(None, "--gpu/--no-gpu", help="Is a GPU available for training?"),
    from_report: Path = typer.Option(None, "--from-report", help="report.json of `ragtune "
                                     "compare`: measurements outrank the answers."),
    metric: str = typer.Option("f1", "--metric", help="Report metric that decides."),
    costs: Path = typer.Option(None, "--costs", help="TOML overriding the cost model."),
    interactive: bool = typer.Option(None, "--interactive/--no-interactive",
                                     help="Ask for what is not given (default: when run in a "
                                          "terminal)."),
    lang: str = typer.Option("en", "--lang", help="en or zh."),
    kb: str = typer.Option("kb", "--kb", help="Knowledge-base folder named in the commands."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Recommend RAG, fine-tuning or a combination, with reasons, costs and next commands."""
    check_lang(lang)
    base = Profile.load(profile) if profile else Profile()
    given = base.merged(_flags(
        change=change, expertise=expertise, sources=sources,
        queries_per_month=queries_per_month, budget_initial=budget_initial,
        budget_monthly=budget_monthly, latency_ms=latency_ms, labelled=labelled, gpu=gpu))
    if interactive is None:
        interactive = sys.stdin.isatty() and not json_out
    if interactive and given.missing():
        given = ask_missing(given, lambda q: typer.prompt(q, default="", show_default=False),
                            lang, tell=lambda m: typer.echo(m, err=True))
    measurements = load_report(from_report, metric) if from_report else None
    result = advise(given, costs=CostModel.load(costs), measurements=measurements, kb=kb)
    if json_out:
        print_json(result.to_dict())
    else:
        typer.echo(render(result, lang))


def profile_command(
    kb: Path = typer.Option(None, "--kb", help="Knowledge base to measure."),
    data: list[Path] = typer.Option(None, "--data", help="Training data: a prepared folder "
                                    "or data files (repeat for several)."),
    questions: Path = typer.Option(None, "--questions", help="Sample questions (QA JSONL or "
                                   "SQuAD) to measure their overlap with the documents."),
    out: Path = typer.Option(None, "--out", help="Write the measured profile as TOML, for "
                             "`ragtune advise --profile`."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Measure what the advisor would otherwise ask: change rate, data size, wording overlap."""
    if kb is None and not data and questions is None:
        raise typer.BadParameter("give --kb, --data or --questions to measure")
    result = measure(kb, data=data or (), questions=questions)
    if out is not None:
        out.write_text(result.profile.to_toml(), encoding="utf-8")
    if json_out:
        print_json({"profile": result.profile.to_dict(), "facts": result.facts})
        return
    facts = result.facts
    k = facts.get("knowledge_base")
    if k:
        typer.echo(f"knowledge base: {k['sources']} sources, {k['chunks']} chunks, "
                   f"{k['bytes'] / 1e6:.1f} MB, version {k['version']}")
        rate = (f"median {k['median_days']:.1f} days between changes" if k["median_days"]
                is not None else "too few ingests to tell how often it changes")
        typer.echo(f"  {k['changes']} ingests over {k['span_days']:.1f} days; {rate}; "
                   f"{k['sources_updated_or_removed']} sources updated or removed, "
                   f"{k['sources_added_later']} added after the first ingest")
    if "labelled" in facts:
        typer.echo(f"labelled examples: {facts['labelled']}")
    if result.profile.question_overlap is not None:
        typer.echo(f"questions: {facts['questions']['scored']} scored; "
                   f"{result.profile.question_overlap:.0%} of their terms occur in the best "
                   "lexical passage")
    typer.echo("\nprofile:\n" + result.profile.to_toml().rstrip())
    if out is not None:
        typer.echo(f"\nwritten to {out}; next: ragtune advise --profile {out}")
