"""``ragtune serve``: the knowledge base behind an OpenAI-compatible API and a web page."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import CONFIG_OPTION, KB_OPTION
from ragtune.errors import ConfigError


def read_key_file(path: Path) -> list[tuple[str, str]]:
    """The key entries in ``path`` (one a line, blank lines and ``#`` comments skipped),
    each with where it is (``keys.txt line 3``) for start-up errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API key file {path}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    entries = [(line.strip(), f"{path} line {n}") for n, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise ConfigError(f"the API key file {path} holds no key (one key a line)")
    return entries


def key_entries(options: list[str] | None, environment: str, path: Path | None
                ) -> list[tuple[str, str]]:
    """Every key entry with where it came from: ``--api-key`` options, then the
    comma-separated ``RAGTUNE_API_KEYS``, then the key file."""
    entries = [(k, f"--api-key {i}") for i, k in enumerate(options or (), 1)]
    entries += [(k.strip(), f"RAGTUNE_API_KEYS entry {i}")
                for i, k in enumerate(environment.split(","), 1) if k.strip()]
    return entries + (read_key_file(path) if path is not None else [])


def serve(
    kb: Path = KB_OPTION,
    adapter: Path = typer.Option(None, "--adapter", help="LoRA run: adds the serial, parallel "
                                 "and layered pipelines with the fine-tuned model. With "
                                 "--generator openai: the adapter's name on that server "
                                 "(vLLM --lora-modules NAME=DIR) or its export folder."),
    generator: str = typer.Option(None, "--generator", help="auto (default), local, llamacpp "
                                  "or openai (an OpenAI-compatible server such as vLLM)."),
    model: str = typer.Option(None, "--model", help="Generator model: bundled name, folder, "
                              ".gguf file, or the base model's name on the server."),
    base_url: str = typer.Option(None, "--base-url",
                                 help="With --generator openai: http://HOST:PORT/v1."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for "
                             "every interface; set --api-key then)."),
    port: int = typer.Option(8000, "--port"),
    api_key: list[str] = typer.Option(None, "--api-key", help="Accepted key: KEY (admin), "
                                      "KEY:read, KEY:write or KEY:SCOPE:COLLECTION (repeat "
                                      "for several; also RAGTUNE_API_KEYS, comma-separated). "
                                      "An empty key is refused."),
    api_key_file: Path = typer.Option(None, "--api-key-file",
                                      help="File of accepted keys, one entry a line "
                                           "(# comments); keeps keys out of the process list."),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb"),
    max_tokens: int = typer.Option(1024, "--max-tokens-limit", help="Largest max_tokens a "
                                   "request may ask for."),
    cors: list[str] = typer.Option(None, "--cors-origin", help="Allow this origin (repeat); "
                                   "CORS is off without it."),
    workers: int = typer.Option(1, "--workers", help="Worker processes; each loads the models."),
    config: Path = CONFIG_OPTION,
) -> None:
    """Serve the knowledge base: /v1/chat/completions, /v1/retrieve, /v1/documents, and /."""
    import os

    import uvicorn

    from ragtune.config import load_settings
    from ragtune.knowledge_base import KnowledgeBase
    from ragtune.serve import ServeSettings, create_app
    from ragtune.serve.app import SETTINGS_ENV

    # the app (and each worker process) reads its generator from the settings: the
    # options are passed as the RAGTUNE_GENERATOR_* variables they stand for
    for name, value in (("BACKEND", generator), ("MODEL", model), ("BASE_URL", base_url)):
        if value:
            os.environ[f"RAGTUNE_GENERATOR_{name}"] = value
    entries = key_entries(api_key, os.environ.get("RAGTUNE_API_KEYS", ""), api_key_file)
    keys = tuple(k for k, _ in entries)
    settings = ServeSettings(kb=kb, adapter=adapter, api_keys=keys,
                             key_labels=tuple(where for _, where in entries),
                             max_upload_mb=max_upload_mb, max_tokens_limit=max_tokens,
                             cors_origins=tuple(cors or ()), config=config)
    KnowledgeBase.open(kb, load_settings(config)).close()  # fail now, with the message
    if host not in ("127.0.0.1", "localhost", "::1") and not keys:
        typer.echo(f"warning: listening on {host} without --api-key: anyone who can reach "
                   "it can read and change the knowledge base", err=True)
    if settings.keys:  # what each key may do, so that a derived collection can be checked
        typer.echo("API keys: " + "; ".join(f"{k.scope} {k.collection}"
                                            for k in settings.keys), err=True)
    if workers > 1:  # each worker process builds its own app (and loads its own models)
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run("ragtune.serve.app:from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="info", timeout_graceful_shutdown=2)
        return
    # SIGTERM: requests in flight get 2 s to finish, then the server stops
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info",
                timeout_graceful_shutdown=2)
