"""``ragtune serve``: the knowledge base behind an OpenAI-compatible API and a web page."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import CONFIG_OPTION, KB_OPTION
from ragtune.errors import ConfigError


def read_key_file(path: Path) -> tuple[str, ...]:
    """The keys in ``path``: one a line, blank lines and ``#`` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API key file {path}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    keys = tuple(line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))
    if not keys:
        raise ConfigError(f"the API key file {path} holds no key (one key a line)")
    return keys


def serve(
    kb: Path = KB_OPTION,
    adapter: Path = typer.Option(None, "--adapter", help="LoRA run: adds the serial, parallel "
                                 "and layered pipelines with the fine-tuned model."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for "
                             "every interface; set --api-key then)."),
    port: int = typer.Option(8000, "--port"),
    api_key: list[str] = typer.Option(None, "--api-key", help="Accepted key (repeat for "
                                      "several; also RAGTUNE_API_KEYS, comma-separated). "
                                      "An empty key is refused."),
    api_key_file: Path = typer.Option(None, "--api-key-file",
                                      help="File of accepted keys, one a line (# comments); "
                                           "keeps keys out of the process list."),
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

    keys = tuple(api_key or ()) + tuple(
        k.strip() for k in os.environ.get("RAGTUNE_API_KEYS", "").split(",") if k.strip())
    if api_key_file is not None:
        keys += read_key_file(api_key_file)
    settings = ServeSettings(kb=kb, adapter=adapter, api_keys=keys,
                             max_upload_mb=max_upload_mb, max_tokens_limit=max_tokens,
                             cors_origins=tuple(cors or ()), config=config)
    KnowledgeBase.open(kb, load_settings(config)).close()  # fail now, with the message
    if host not in ("127.0.0.1", "localhost", "::1") and not keys:
        typer.echo(f"warning: listening on {host} without --api-key: anyone who can reach "
                   "it can read and change the knowledge base", err=True)
    if workers > 1:  # each worker process builds its own app (and loads its own models)
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run("ragtune.serve.app:from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="info", timeout_graceful_shutdown=2)
        return
    # SIGTERM: requests in flight get 2 s to finish, then the server stops
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info",
                timeout_graceful_shutdown=2)
