"""``ragtune tune``: fine-tuning commands; ``prepare`` checks and splits the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ragtune.cli import tune_run
from ragtune.cli.common import JSON_OPTION, display_path, print_json
from ragtune.tune import data as tune_data

app = typer.Typer(help="Fine-tune a model: prepare data, train LoRA adapters, export.",
                  no_args_is_help=True)


def _unescape(text: str | None) -> str | None:
    r"""``\n`` and ``\t`` typed in a shell argument as the characters they stand for."""
    return text.replace("\\n", "\n").replace("\\t", "\t") if text else text


def _stats_line(stats: dict[str, Any]) -> str:
    per = stats["tokens_per_example"]
    if per is None:
        return "no examples"
    return (f"{stats['tokens']} tokens ({stats['answer_tokens']} in answers); per example "
            f"min {per['min']}, mean {per['mean']}, p50 {per['p50']}, p95 {per['p95']}, "
            f"max {per['max']}")


def summary(info: dict[str, Any], out: Path) -> str:
    """The lines ``prepare`` prints: formats, counts, split and token statistics."""
    lines = [f"{display_path(f['path'])}: {f['format'] or 'empty'}, {f['records']} records"
             for f in info["inputs"]]
    c, s = info["counts"], info["split"]
    skipped = " (skipped)" if c["invalid"] else ""
    lines.append(f"{c['read']} read: {c['valid']} valid, {c['invalid']} invalid{skipped}, "
                 f"{c['duplicates']} duplicates dropped")
    split = (f"split: {c['train']} train, {c['eval']} eval (fraction {s['fraction']}, "
             f"seed {s['seed']})")
    if s["group_by"]:
        split += (f", whole groups by {s['group_by']!r}: {s['groups']['train']} in train, "
                  f"{s['groups']['eval']} in eval")
    lines.append(split)
    lines.append(f"tokens with the {info['base_model']} chat template:")
    for part in ("train", "eval"):
        lines.append(f"  {part + ':':<6} {_stats_line(info['tokens'][part])}")
    lines.append(f"wrote {display_path(str(out))}/: train.jsonl, eval.jsonl, data.json")
    return "\n".join(lines)


@app.command("prepare")
def prepare(
    data: list[Path] = typer.Argument(..., help=".json or .jsonl files of examples."),
    out: Path = typer.Option(..., "--out",
                             help="Folder to write train.jsonl, eval.jsonl and data.json to."),
    base: str = typer.Option(tune_data.DEFAULT_BASE, "--base",
                             help="Model whose tokenizer and chat template count tokens."),
    fmt: str = typer.Option("auto", "--format", help="auto, alpaca, messages, sharegpt, "
                            "prompt_completion or template (auto: detected per file)."),
    template: str = typer.Option(None, "--template",
                                 help="User turn from record fields: \"Summarise: {text}\"."),
    target_field: str = typer.Option(None, "--target-field",
                                     help="With --template: the field holding the answer."),
    system: str = typer.Option(None, "--system",
                               help="System message for examples that have none."),
    split: float = typer.Option(0.1, "--split", help="Fraction held out for eval, in [0, 1)."),
    group_by: str = typer.Option(None, "--group-by",
                                 help="Keep records sharing this field on one side."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Leave invalid records out instead of failing."),
    as_json: bool = JSON_OPTION,
) -> None:
    r"""Check, normalise and split fine-tuning data into a prepared folder.

    Reads Alpaca, OpenAI chat (messages), ShareGPT, prompt/completion or any records through
    --template. Any invalid record fails the command (exit 1) with the file, line and field
    of each problem, and nothing is written. In --template and --system, \n is a line break.
    """
    info = tune_data.prepare(data, out, base=base, fmt=fmt, template=_unescape(template),
                             target_field=target_field, system=_unescape(system),
                             split=split, group_by=group_by, seed=seed,
                             skip_invalid=skip_invalid)
    if as_json:
        print_json(info)
        return
    typer.echo(summary(info, out))
    for problem in info["invalid"][:tune_data.MAX_LISTED]:
        typer.echo(f"skipped {problem}", err=True)
    if len(info["invalid"]) > tune_data.MAX_LISTED:
        typer.echo(f"... and {len(info['invalid']) - tune_data.MAX_LISTED} more, listed in "
                   "data.json", err=True)


app.command("lora")(tune_run.lora)
app.command("export")(tune_run.export_run)
