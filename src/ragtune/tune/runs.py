"""Run folders on disk: ``run.json``, checkpoints and saved adapters (which adapter folder a
run means, and its base model: :mod:`ragtune.models.peft_adapters`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError

__all__ = ["load_run"]


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
