"""Export a trained adapter: the PEFT folder as is, or merged into the base weights.

A merged export is a plain transformers folder (safetensors, config, tokenizer, generation
config) that ``AutoModelForCausalLM.from_pretrained`` and vLLM load with no PEFT. The
unmerged adapter is what vLLM's ``--enable-lora --lora-modules name=DIR`` serves next to
the base model: one base, many adapters, each chosen per request by its name (what
``ragtune serve --generator openai --adapter NAME`` sends as the request's ``model``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.models.peft_adapters import adapter_dir, base_of

__all__ = ["export", "vllm_command"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VLLM_DEFAULT_MAX_RANK = 16  # vLLM's --max-lora-rank default


def default_name(adapter: Path) -> str:
    """The run folder's name (``runs/legal/adapter`` -> ``legal``)."""
    folder = adapter.resolve()
    return folder.parent.name if folder.name in ("adapter", "last") else folder.name


def vllm_command(result: dict[str, Any]) -> str:
    """The ``vllm serve`` command that serves an unmerged export next to its base."""
    command = (f"vllm serve {result['base_path']} --enable-lora "
               f"--lora-modules {result['name']}={Path(result['out']).resolve()}")
    if result["rank"] > VLLM_DEFAULT_MAX_RANK:
        command += f" --max-lora-rank {result['rank']}"
    return command


def export(run: str | Path, out: str | Path, *, merge: bool = False,
           dtype: str = "float32", name: str | None = None) -> dict[str, Any]:
    """Write the run's adapter (or, with ``merge``, the merged model) to ``out``.

    ``name`` is the adapter's name on a server (vLLM's ``--lora-modules NAME=DIR``),
    recorded in ``ragtune-export.json``; default the run folder's name.
    """
    import torch

    from ragtune.models.local_generator import resolve_model_dir

    adapter = adapter_dir(run)
    name = name or default_name(adapter)
    if not _NAME.fullmatch(name):
        raise ConfigError(f"adapter name {name!r} must be letters, digits, '.', '_' or '-' "
                          "(it goes into --lora-modules NAME=DIR): give --name")
    target = Path(out)
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} is not empty: export into a new folder")
    base = base_of(adapter)
    base_path = resolve_model_dir(base)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if not merge:
        shutil.copytree(adapter, tmp)
        config = json.loads((tmp / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = str(base_path)
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    else:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be float32, bfloat16 or float16, not {dtype!r}")
        model = AutoModelForCausalLM.from_pretrained(str(base_path), local_files_only=True,
                                                     dtype=getattr(torch, dtype))
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        merged.save_pretrained(str(tmp), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(base_path), local_files_only=True).save_pretrained(
            str(tmp))
    (tmp / "ragtune-export.json").write_text(json.dumps(
        {"run": str(Path(run).resolve()), "adapter": str(adapter.resolve()), "base": base,
         "base_path": str(base_path), "merged": merge, "dtype": dtype if merge else None,
         "name": name}, indent=2) + "\n")
    rank = int(json.loads((adapter / "adapter_config.json").read_text()).get("r") or 0)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return {"out": str(target), "merged": merge, "base": base, "base_path": str(base_path),
            "name": name, "rank": rank}
