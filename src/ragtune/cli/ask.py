"""``ragtune ask``: an answer from the knowledge base with its cited sources."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import (
    CONFIG_OPTION,
    DECODER_OPTION,
    JSON_OPTION,
    KB_OPTION,
    MMR_OPTION,
    PAGES_OPTION,
    RERANK_OPTION,
    SINCE_OPTION,
    SOURCE_OPTION,
    UNTIL_OPTION,
    display_path,
    make_filter,
    print_json,
    settings_from,
)
from ragtune.display import relabel_answer
from ragtune.knowledge_base import KnowledgeBase
from ragtune.models.adapters import is_choice
from ragtune.types import Answer


def format_answer(answer: Answer) -> str:
    """The answer, its sources as :func:`ragtune.display.relabel_answer` names them, and how
    it was made."""
    lines = [answer.text or "(empty answer)", ""]
    if answer.citations:
        lines.append("Sources:")
    for c in answer.citations:
        where = c.chunk.source + (f", page {c.chunk.page}" if c.chunk.page else "")
        mark = "supported" if c.supported else "NOT supported"
        lines.append(f"  [{c.n}] {where} ({mark}, support {c.support:.2f})")
        lines.append(f"      {' '.join(c.chunk.text.split())[:200]}")
    for sentence in answer.unsupported:
        lines.append(f"  not supported by any source: {sentence}")
    if answer.route:
        lines.append(f"route: {answer.route['strategy']} ({answer.route['reason']})")
    for v in (answer.judge or {}).get("verdicts", []):
        lines.append(f"judge on {v['strategy']}: {'passed' if v['passed'] else 'failed'}, "
                     f"{v['reason']}")
    if answer.dropped:
        lines.append(f"({len(answer.dropped)} retrieved chunks did not fit the context window)")
    steps = ", ".join(f"{k.removesuffix('_ms')} {v:.0f} ms" for k, v in answer.timings.items()
                      if k != "total_ms")
    lines.append(f"pipeline {answer.pipeline}" + (f" (adapter {display_path(answer.adapter)})"
                                                  if answer.adapter else "")
                 + f": {steps}; total {answer.timings.get('total_ms', 0):.0f} ms; "
                 f"{answer.prompt_tokens} prompt + {answer.completion_tokens} completion tokens")
    return "\n".join(lines)


def ask(
    question: str = typer.Argument(..., help="The question."),
    kb: Path = KB_OPTION,
    k: int = typer.Option(None, "-k", help="Chunks to retrieve (default 3)."),
    mode: str = typer.Option(None, "--mode", help="hybrid (default), dense or lexical."),
    generator: str = typer.Option(None, "--generator", help="auto (default: the bundled "
                                  "model's fastest engine), local, llamacpp or openai."),
    model: str = typer.Option(None, "--model",
                              help="Bundled model, model folder, .gguf file, or remote name."),
    adapter: str = typer.Option(None, "--adapter",
                                help="LoRA run folder (ragtune tune lora) to answer with; "
                                     "'none': the raw model; default: the bundled "
                                     "grounded-answer adapter ('auto')."),
    strict: bool = typer.Option(False, "--strict",
                                help="Drop answer sentences that no source supports."),
    pipeline: str = typer.Option(None, "--pipeline",
                                 help="closed, rag, serial, parallel or layered (default: "
                                      "rag, or serial with --adapter)."),
    router: Path = typer.Option(None, "--router",
                                help="layered: router file (default: the knowledge base's "
                                     "router.json, else rules)."),
    judge_threshold: float = typer.Option(None, "--judge-threshold",
                                          help="layered: support an answer needs to pass "
                                               "(default 0.5)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint URL."),
    api_key: str = typer.Option(None, "--api-key", help="API key (else OPENAI_API_KEY)."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Output tokens to allow."),
    decoder: str = DECODER_OPTION,
    source: str = SOURCE_OPTION,
    pages: str = PAGES_OPTION,
    since: str = SINCE_OPTION,
    until: str = UNTIL_OPTION,
    rerank: str = RERANK_OPTION,
    mmr: float = MMR_OPTION,
    neighbours: int = typer.Option(None, "--neighbours",
                                   help="Chunks joined before and after each hit."),
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Retrieve, generate from numbered sources, and check each citation."""
    # auto and none choose the base generator's adapter; a run folder is the tuned model
    own = adapter is not None and is_choice(adapter)
    settings = settings_from(
        config, retrieval={"mode": mode, "reranker": rerank, "mmr_lambda": mmr,
                           "neighbours": neighbours},
        generator={"backend": generator, "model": model, "base_url": base_url,
                   "api_key": api_key, "max_tokens": max_tokens, "decoder": decoder,
                   "adapter": adapter if own else None,
                   "citations": "strict" if strict else None},
    )
    run = None if own else adapter
    with KnowledgeBase.open(kb, settings) as base:
        result = base.ask(question, k=k, filter=make_filter(source, pages, since, until),
                          pipeline=pipeline or ("serial" if run else "rag"),
                          adapter=run, router=router,
                          judge_threshold=judge_threshold)
        result = relabel_answer(result, base.display_names())  # docs/a.md, not /home/...
    if as_json:
        print_json(result.to_dict())
    else:
        typer.echo(format_answer(result))
