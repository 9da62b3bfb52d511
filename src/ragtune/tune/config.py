"""The settings of a training run: what ``run.json`` records and ``--resume`` reuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragtune.errors import ConfigError

__all__ = ["BEST_METRICS", "TrainConfig"]

BEST_METRICS = ("rouge_l", "exact_match", "eval_loss")


@dataclass
class TrainConfig:
    """Everything that defines a run; written to ``run.json`` and reused by ``--resume``."""

    data: str = ""
    out: str = ""
    base: str = "smollm2-135m-instruct"
    # LoRA
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"
    qlora: bool = False
    # optimisation
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    epochs: float = 1.0
    max_steps: int = 0  # 0: from epochs
    batch_size: int = 8  # records per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_length: int = 2048  # tokens kept per record
    # tokens per packed row: attention over a row costs its length squared, so short rows
    # waste less on masked pairs (SmolLM2-135M on 2 cores, fp32: 201 tokens/s with rows of
    # 512, 181 with 1,024, 145 with 2,048 and 3x the memory)
    pack_length: int = 512
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    seed: int = 0
    precision: str = "auto"  # auto | bf16 | fp32
    gradient_checkpointing: bool = False
    device: str = "auto"  # auto | cpu | cuda
    # evaluation and checkpoints
    eval_every: int = 0  # steps; 0: only at the end
    eval_samples: int = 16  # eval records answered by generation each evaluation
    eval_max_records: int = 256  # eval records used for the eval loss
    max_new_tokens: int = 64
    best_metric: str = "rouge_l"
    save_every: int = 50
    keep_checkpoints: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.best_metric not in BEST_METRICS:
            raise ConfigError(f"best_metric must be one of {', '.join(BEST_METRICS)}, "
                              f"not {self.best_metric!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, not {self.device!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, not {self.precision!r}")
        for name in ("rank", "batch_size", "grad_accum", "max_length", "pack_length",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.learning_rate <= 0:
            raise ConfigError("learning_rate must be positive")
