"""The bundled grounded-answer LoRA adapters: one folder per adapter, named
``<base model>-grounded-<language>``, holding the PEFT files and the ``run.json`` of the
training run (data hashes, settings, seed). ``bench/answer_adapters.py`` rebuilds them.

They teach the bundled generator to answer from numbered sources the way ``ragtune ask``
shows them: a short answer that ends with the ``[n]`` of its source, or
``The sources do not say.`` when none holds the answer. An adapter's ``calibration.json``
names that abstention and the probability at which it is chosen (``threshold``, set on a
validation split of the training articles by ``bench/answer_calibration.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["ADAPTERS", "NO_ADAPTER", "abstention", "bundled_adapter", "calibration",
           "grounded_models", "is_choice", "resolve_adapter"]

ADAPTERS = Path(__file__).resolve().parent
NO_ADAPTER = ("", "none", "off", "raw")  # the raw model


def bundled_adapter(model: str, lang: str = "en") -> Path | None:
    """The bundled adapter for ``model`` (a bundled generator name) and ``lang``, if one
    ships."""
    folder = ADAPTERS / f"{model.lower()}-grounded-{lang}"
    return folder if (folder / "adapter_config.json").exists() else None


def grounded_models(lang: str) -> list[str]:
    """The bundled generators that ship a grounded adapter for ``lang``, by name."""
    suffix = f"-grounded-{lang}"
    return sorted(p.name.removesuffix(suffix) for p in ADAPTERS.glob(f"*{suffix}")
                  if (p / "adapter_config.json").exists())


def resolve_adapter(adapter: str | Path | None, model: str) -> str | Path | None:
    """What ``generator.adapter`` means: ``auto`` is the bundled adapter for ``model`` (none
    for a model without one), ``none`` the raw model, anything else a run or PEFT folder."""
    if adapter is None or str(adapter).strip().lower() in NO_ADAPTER:
        return None
    if str(adapter).strip().lower() == "auto":
        return bundled_adapter(model)
    return adapter


def is_choice(adapter: str | Path | None) -> bool:
    """Whether ``adapter`` names a choice (``auto``, ``none`` and the like), not a folder."""
    return adapter is None or str(adapter).strip().lower() in (*NO_ADAPTER, "auto")


def calibration(adapter: Path) -> dict[str, Any]:
    """The adapter's ``calibration.json`` (``abstain``: the abstention text, ``threshold``:
    the probability of it at which it is chosen), or ``{}`` when it has none."""
    path = adapter / "calibration.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        from ragtune.errors import ConfigError

        raise ConfigError(f"cannot read {path}: {exc}; restore it or delete it") from None
    return data if isinstance(data, dict) else {}


def abstention(adapter: Path | None, threshold: float | None) -> tuple[str, float | None]:
    """A bundled adapter's abstention text and the threshold in force: ``threshold`` (the
    setting) when given, else the adapter's calibrated one; ``("", None)`` without one."""
    calibrated = calibration(adapter) if adapter is not None else {}
    text = str(calibrated.get("abstain") or "")
    return text, threshold if threshold is not None else calibrated.get("threshold")
