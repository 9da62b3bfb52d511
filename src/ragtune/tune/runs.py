"""Run folders on disk: ``run.json``, checkpoints, adapter folders and their base model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError

__all__ = ["adapter_dir", "base_of", "load_run"]


def atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)


def checkpoints(out: Path) -> list[Path]:
    folder = out / "checkpoints"
    if not folder.exists():
        return []
    return [p for p in folder.glob("step-*") if (p / "state.pt").exists()]


def truncate_metrics(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def replace_dir(target: Path, model: Any) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def load_run(run: str | Path) -> dict[str, Any]:
    """``run.json`` of a run folder, with a clear error when ``run`` is not one."""
    path = Path(run)
    info = path / "run.json"
    if not info.exists():
        raise ConfigError(f"{path} is not a ragtune run folder (no run.json): train one with "
                          "`ragtune tune lora --data DIR --out RUN`")
    return json.loads(info.read_text())


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
