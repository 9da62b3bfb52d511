"""``ragtune chat``: a conversation with the knowledge base in the terminal.

Each line read is a question; a follow-up ("and for the nine months?") is rewritten into a
standalone question before retrieval and the rewritten question is shown. ``/sources N``
shows the citations of turn N again, ``/quit`` (or end of input) ends the conversation.
Questions can be piped in: ``printf 'q1\\nq2\\n' | ragtune chat --kb kb``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ragtune.cli.ask import format_answer
from ragtune.cli.common import CONFIG_OPTION, JSON_OPTION, KB_OPTION, print_json, settings_from
from ragtune.display import relabel_answer
from ragtune.knowledge_base import KnowledgeBase
from ragtune.rag.followup import Conversation, Turn
from ragtune.types import Answer

PROMPT = "> "


def _format_sources(turn: Turn, n: int) -> str:
    lines = [f"turn {n}: {turn.rewrite.question}"]
    for c in turn.answer.citations:
        where = c.chunk.source + (f", page {c.chunk.page}" if c.chunk.page else "")
        lines.append(f"  [{c.n}] {where}: {' '.join(c.chunk.text.split())[:200]}")
    if not turn.answer.citations:
        lines.append("  (no citations)")
    return "\n".join(lines)


def chat(
    kb: Path = KB_OPTION,
    k: int = typer.Option(None, "-k", help="Chunks to retrieve per question (default 3)."),
    pipeline: str = typer.Option("rag", "--pipeline",
                                 help="closed, rag, serial, parallel or layered."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Output tokens to allow."),
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask questions one after another; follow-ups are read in the conversation."""
    settings = settings_from(config, generator={"max_tokens": max_tokens})
    interactive = sys.stdin.isatty()
    with KnowledgeBase.open(kb, settings) as base:
        names = base.display_names()

        def answer(question: str) -> Answer:
            return relabel_answer(base.ask(question, k=k, pipeline=pipeline), names)

        conversation = Conversation(answer, base.generator)
        while True:
            if interactive:
                typer.echo(PROMPT, nl=False)
            line = sys.stdin.readline()
            if not line:
                break
            question = line.strip()
            if not question:
                continue
            if question in ("/quit", "/exit"):
                break
            if question.startswith("/sources"):
                _show_sources(conversation, question)
                continue
            turn = conversation.ask(question)
            n = len(conversation.turns)
            if as_json:
                print_json({"turn": n, "asked": turn.rewrite.asked,
                            "question": turn.rewrite.question, "rewrite": turn.rewrite.rule,
                            **turn.answer.to_dict()})
                continue
            if turn.rewrite.changed:
                typer.echo(f"(searching for: {turn.rewrite.question})")
            typer.echo(format_answer(turn.answer))
            typer.echo("")


def _show_sources(conversation: Conversation, command: str) -> None:
    arg = command.removeprefix("/sources").strip()
    count = len(conversation.turns)
    if not arg.isdigit() or not 1 <= int(arg) <= count:
        typer.echo(f"/sources takes a turn number from 1 to {count}; got {arg or 'none'!r}",
                   err=True)
        return
    typer.echo(_format_sources(conversation.turns[int(arg) - 1], int(arg)))
