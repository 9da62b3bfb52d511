"""The ``ragtune`` command line: one module per command group, each calling the Python API."""

from __future__ import annotations

import logging
import os
import sys

import typer

from ragtune.cli import (
    advise,
    ask,
    chat,
    compare,
    evaluate,
    generate,
    ingest,
    kb,
    models,
    raft,
    router,
    search,
    serve,
    tune,
)
from ragtune.cli.common import run_safely

app = typer.Typer(
    name="ragtune",
    help="RAG, fine-tuning and their combinations, measured on your own data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models.app, name="models")
app.add_typer(kb.app, name="kb")
app.add_typer(tune.app, name="tune")
app.add_typer(evaluate.app, name="eval")
app.add_typer(router.app, name="router")
app.add_typer(raft.app, name="raft")
app.command("ingest")(ingest.ingest)
app.command("search")(search.search)
app.command("ask")(ask.ask)
app.command("chat")(chat.chat)
app.command("generate")(generate.generate)
app.command("compare")(compare.compare_command)
app.command("advise")(advise.advise_command)
app.command("profile")(advise.profile_command)
app.command("serve")(serve.serve)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
    level = logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    # the handler's own level, since some libraries set their loggers to DEBUG
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if not verbose:  # model-loading progress bars are noise in a terminal answer
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("LANCE_LOG", "error")


def main() -> None:
    run_safely(app)
