"""``ragtune generate``: the model alone (closed book), with or without a LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import CONFIG_OPTION, DECODER_OPTION, JSON_OPTION, print_json, settings_from
from ragtune.types import Message


def generate(
    prompt: str = typer.Argument(..., help="The prompt (sent as one user message)."),
    adapter: str = typer.Option(None, "--adapter", help="LoRA run folder or adapter folder."),
    model: str = typer.Option(None, "--model", help="Bundled model or model folder."),
    system: str = typer.Option(None, "--system", help="A system message first."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Output tokens to allow."),
    temperature: float = typer.Option(0.0, "--temperature", help="0: greedy."),
    stream: bool = typer.Option(False, "--stream", help="Print tokens as they come."),
    decoder: str = DECODER_OPTION,
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Answer a prompt with the local model, no retrieval."""
    from ragtune.models.components import build_generator

    settings = settings_from(config, generator={"model": model, "adapter": adapter,
                                                     "decoder": decoder})
    generator = build_generator(settings.generator)
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    if stream and not as_json:
        for piece in generator.stream(messages, max_tokens=max_tokens, temperature=temperature):
            typer.echo(piece, nl=False)
        typer.echo()
        return
    result = generator.generate(messages, max_tokens=max_tokens, temperature=temperature)
    if as_json:
        print_json({"text": result.text, "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "finish_reason": result.finish_reason, "adapter": adapter})
    else:
        typer.echo(result.text)
