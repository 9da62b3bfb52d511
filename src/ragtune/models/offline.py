"""Keep every model load off the network: no hub, no telemetry."""

from __future__ import annotations

import os


def ensure_offline() -> None:
    """Set the Hugging Face offline switches before transformers is first used.

    Called by every function that loads a model (never at import time). ``setdefault``
    leaves a user's explicit choice alone; we also pass ``local_files_only=True``.
    """
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
