"""``ragtune raft build``: retrieval-augmented fine-tuning data from a knowledge base."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import CONFIG_OPTION, KB_OPTION, settings_from
from ragtune.errors import ConfigError
from ragtune.knowledge_base import KnowledgeBase
from ragtune.models.components import LOCAL_BACKENDS

app = typer.Typer(help="RAFT: retrieval-augmented fine-tuning data.", no_args_is_help=True)


@app.command("build")
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
            if settings.generator.backend in LOCAL_BACKENDS:
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
