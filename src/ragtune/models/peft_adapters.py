"""Adapter folders on disk: the PEFT folder that ``--adapter RUN`` means, and the base
model it was trained on."""

from __future__ import annotations

import json
from pathlib import Path

from ragtune.errors import ConfigError

__all__ = ["adapter_dir", "base_of"]


def adapter_dir(run: str | Path) -> Path:
    """The adapter folder to use for ``--adapter RUN`` (the best one; a PEFT folder also
    works directly)."""
    path = Path(run)
    if (path / "adapter_config.json").exists():
        return path
    for name in ("adapter", "last"):
        if (path / name / "adapter_config.json").exists():
            return path / name
    raise ConfigError(f"{path} holds no adapter: expected {path}/adapter/adapter_config.json "
                      "from `ragtune tune lora`, or a PEFT adapter folder")


def base_of(adapter: Path) -> str:
    """The base model an adapter was trained on: from ``run.json`` when there is one."""
    for folder in (adapter, adapter.parent):
        if (folder / "run.json").exists():
            return str(json.loads((folder / "run.json").read_text())["config"]["base"])
    config = json.loads((adapter / "adapter_config.json").read_text())
    return str(config.get("base_model_name_or_path") or "smollm2-135m-instruct")
