"""LoRA and QLoRA fine-tuning with a small, fast training loop of our own.

Why not ``transformers.Trainer``: on a laptop CPU the time goes to padding, recomputed
activations and the vocabulary projection of prompt tokens. This loop packs records into
rows without padding (block-diagonal attention, so records never see each other), keeps
the frozen base in bf16 where the CPU or GPU has bf16 kernels, projects only the answer
positions onto the vocabulary, and checkpoints nothing it does not need.

The module is the loop itself (steps, evaluation, checkpoints and resume), kept together
because they share the trainer's state; the run's settings live in :mod:`ragtune.tune.config`,
model pieces in :mod:`ragtune.tune.model` and run-folder files in :mod:`ragtune.tune.runs`.

A run folder holds:

- ``run.json``: the resolved config, library versions, seed, data hashes, device and the
  outcome (steps, tokens/s, best checkpoint, peak memory);
- ``metrics.jsonl``: one line per optimizer step and one per evaluation;
- ``adapter/``: the best adapter by the chosen metric, in PEFT's layout (what
  ``--adapter RUN`` loads); ``last/``: the adapter after the final step;
- ``checkpoints/step-N/``: adapter, optimizer, scheduler and random states, for
  ``--resume``; ``eval/step-N.jsonl``: the generated evaluation answers.

Under ``torchrun`` / ``accelerate launch`` the same loop runs data-parallel (see
:mod:`ragtune.tune.distributed`): one run folder, which rank 0 alone writes.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import random
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, cast

from ragtune.errors import RagtuneError
from ragtune.evaluate.metrics import exact_match, rouge_l
from ragtune.tune import distributed
from ragtune.tune.config import TrainConfig
from ragtune.tune.encode import Encoded, encode_record, pack, row_tensors
from ragtune.tune.formats import Example
from ragtune.tune.model import (
    answer_loss,
    check_qlora,
    generate_batch,
    load_lora_model,
    resolve_precision,
)
from ragtune.tune.runs import (
    atomic_json,
    checkpoints,
    load_run,
    replace_dir,
    truncate_metrics,
)
from ragtune.types import Message

logger = logging.getLogger(__name__)

__all__ = ["Trainer", "answer_loss", "generate_batch", "load_run", "resume", "train"]

def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("ragtune", "torch", "transformers", "peft", "bitsandbytes"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def chat(record: Example) -> list[Message]:
    """A prepared record's messages, as the tokenizer functions type them."""
    return cast("list[Message]", record["messages"])


class Trainer:
    """One LoRA run: build it with a config, call :meth:`run`.

    Example:
        >>> cfg = TrainConfig(data="prepared/", out="runs/legal", max_steps=100)  # doctest: +SKIP
        >>> Trainer(cfg).run()  # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False,
                 progress: bool = True) -> None:
        config.validate()
        if not resume:  # absolute, so that --resume and export work from any folder
            config.data = str(Path(config.data).resolve())
            if Path(config.base).expanduser().exists():
                config.base = str(Path(config.base).expanduser().resolve())
        self.config = config
        self.out = Path(config.out)
        self.resume = resume
        self.progress = progress
        self.best: dict[str, Any] | None = None  # the best checkpoint's metrics so far

    # -- setup ------------------------------------------------------------------------

    def _load(self) -> None:
        import numpy as np
        import torch

        from ragtune.models.local_generator import resolve_model_dir
        from ragtune.models.offline import ensure_offline
        from ragtune.tune.data import load_prepared, load_tokenizer

        ensure_offline()
        cfg = self.config
        self.train_records, self.eval_records, self.data_info = load_prepared(Path(cfg.data))
        if self.resume:
            recorded = load_run(self.out).get("data", {}).get("hashes") or {}
            current = self.data_info.get("hashes") or {}
            if recorded and recorded != current:
                raise RagtuneError(
                    f"{cfg.data} changed since {self.out} started (its train/eval hashes "
                    "differ from run.json): resuming would train on other data; restore "
                    "the data or start a new run")
        if not self.train_records:
            raise RagtuneError(f"{cfg.data}: no training records")
        if cfg.qlora:
            check_qlora(self.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.base_path = resolve_model_dir(cfg.base)
        self.tokenizer = load_tokenizer(cfg.base)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.model = load_lora_model(self.base_path, cfg, self.device, self.precision)
        if self.world.distributed:  # dropout differs per rank; rank 0 keeps the 1-process seed
            torch.manual_seed(cfg.seed + self.world.rank)
        self.forward = distributed.data_parallel(self.world, self.model, self._loss_sum)
        self.encoded = [encode_record(self.tokenizer, chat(r), cfg.max_length, r["id"])
                        for r in self.train_records]
        self.encoded_eval = [encode_record(self.tokenizer, chat(r), cfg.max_length,
                                           r["id"])
                             for r in self.eval_records[: cfg.eval_max_records]]
        per_step = cfg.batch_size * cfg.grad_accum * self.world.size
        self.steps_per_epoch = math.ceil(len(self.encoded) / per_step)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate,
                                           weight_decay=cfg.weight_decay)
        warmup = max(1, round(cfg.warmup_ratio * self.total_steps)) if cfg.warmup_ratio else 0

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = (step - warmup) / max(1, self.total_steps - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)

    def step_records(self, step: int) -> list[list[int]]:
        """This process's micro-batches (record indices) of optimizer ``step``: the same on
        a resume. With several processes every rank gets ``grad_accum`` micro-batches
        (some may be empty at the end of an epoch), so that all take part in each
        gradient reduction."""
        import numpy as np

        cfg = self.config
        per_step = cfg.batch_size * cfg.grad_accum * self.world.size
        epoch, at = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(self.encoded))
        chosen = distributed.share(self.world, order[at * per_step:(at + 1) * per_step].tolist())
        size = cfg.batch_size
        if self.world.distributed:
            return [chosen[i:i + size] for i in range(0, size * cfg.grad_accum, size)]
        return [chosen[i:i + size] for i in range(0, len(chosen), size)]

    # -- loss -------------------------------------------------------------------------

    def _loss_sum(self, records: Sequence[Encoded]) -> tuple[Any, int]:
        """Summed cross-entropy over the answer tokens of ``records`` packed into rows."""
        import torch

        total = None
        tokens = 0
        for row in pack(records, self.config.pack_length):
            batch = {k: v.to(self.device) for k, v in row_tensors(records, row).items()}
            tokens += batch["input_ids"].numel()
            with torch.autocast(self.device, dtype=torch.bfloat16,
                                enabled=self.precision == "bf16"):
                loss = answer_loss(self.model, batch)
            total = loss if total is None else total + loss
        return total, tokens

    # -- evaluation -------------------------------------------------------------------

    def evaluate(self, step: int) -> dict[str, Any]:
        import torch

        cfg = self.config
        self.model.eval()
        result: dict[str, Any] = {"step": step, "kind": "eval"}
        if self.encoded_eval:
            loss_sum, answer = 0.0, 0
            with torch.no_grad():
                for start in range(0, len(self.encoded_eval), cfg.batch_size):
                    chunk = self.encoded_eval[start:start + cfg.batch_size]
                    loss, _ = self._loss_sum(chunk)
                    loss_sum += float(loss)
                    answer += sum(e.answer_tokens for e in chunk)
            result["eval_loss"] = loss_sum / max(1, answer)
        sample = self.eval_records[: cfg.eval_samples]
        if sample:
            prompts = [chat(r)[:-1] for r in sample]
            refs = [r["messages"][-1]["content"] for r in sample]
            answers = generate_batch(self.model, self.tokenizer, prompts, cfg.max_new_tokens,
                                     precision=self.precision)
            result["rouge_l"] = sum(rouge_l(a, [g]) for a, g in zip(answers, refs,
                                                                    strict=True)) / len(sample)
            result["exact_match"] = sum(exact_match(a, [g]) for a, g in zip(
                answers, refs, strict=True)) / len(sample)
            result["eval_samples"] = len(sample)
            lines = [json.dumps({"id": r["id"], "answer": a, "reference": g}, ensure_ascii=False)
                     for r, a, g in zip(sample, answers, refs, strict=True)]
            (self.out / "eval").mkdir(exist_ok=True)  # evaluate runs on rank 0 only
            (self.out / "eval" / f"step-{step}.jsonl").write_text("\n".join(lines) + "\n")
        self.model.train()
        return result

    def _better(self, result: dict[str, Any]) -> bool:
        metric = self.config.best_metric
        if metric not in result:
            metric = "eval_loss" if "eval_loss" in result else ""
        if not metric:  # nothing to compare by: the latest is the one to use
            return True
        value = result[metric]
        if self.best is None or metric not in self.best:
            return True
        return value < self.best[metric] if metric == "eval_loss" else value > self.best[metric]

    # -- checkpoints ------------------------------------------------------------------

    def _save_checkpoint(self, step: int) -> None:
        import numpy as np
        import torch

        rng = {"python": random.getstate(), "numpy": np.random.get_state(),
               "torch": torch.get_rng_state()}
        ranks = distributed.gather(self.world, rng)  # every rank's dropout state
        if not self.world.is_main:
            return
        folder = self.out / "checkpoints"
        tmp = folder / f".step-{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.model.save_pretrained(str(tmp / "adapter"))
        torch.save({
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng,
            "rank_rng": ranks,
            "world_size": self.world.size,
            "best": self.best,
            "tokens": self.tokens_seen,
            "elapsed": self.train_seconds,
        }, tmp / "state.pt")
        final = folder / f"step-{step}"
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        kept = sorted(checkpoints(self.out), key=lambda p: int(p.name.split("-")[1]))
        for old in kept[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    def _restore(self) -> int:
        import numpy as np
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        found = sorted(checkpoints(self.out), key=lambda p: int(p.name.split("-")[1]))
        if not found:
            logger.info("no checkpoint in %s: starting at step 0", self.out)
            return 0
        last = found[-1]
        weights = load_file(str(last / "adapter" / "adapter_model.safetensors"))
        set_peft_model_state_dict(self.model, weights)
        state = torch.load(last / "state.pt", weights_only=False)
        self._check_world(int(state.get("world_size", 1)), f"{last}/state.pt")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rng = state.get("rank_rng", [state["rng"]])[self.world.rank]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        self.best = state["best"]
        self.tokens_seen = state["tokens"]
        self.train_seconds = state["elapsed"]
        logger.info("resuming %s at step %d", self.out, state["step"])
        return int(state["step"])

    def _check_world(self, recorded: int, where: str) -> None:
        """A resume keeps the run's number of processes: another would change the global
        batch and which records each rank trains on."""
        if recorded == self.world.size:
            return
        per = self.config.batch_size * self.config.grad_accum
        how = (f"`torchrun --nproc-per-node {recorded} -m ragtune tune lora --resume "
               f"{self.out}`" if recorded > 1 else
               f"`ragtune tune lora --resume {self.out}` without a launcher")
        raise RagtuneError(
            f"{self.out} was trained by {recorded} process(es) ({where}: {per * recorded} "
            f"records per step) and this resume runs {self.world.size}: the global batch "
            "and the data each process sees would change mid-run. Resume with the same "
            f"number, {how}, or start a new run")

    # -- the loop ---------------------------------------------------------------------

    def _step(self, batches: list[list[Encoded]]) -> tuple[float, int, int]:
        """Forward and backward of one optimizer step's micro-batches; returns the summed
        answer loss, the tokens and the answer tokens, over all processes."""
        from contextlib import nullcontext

        answer = sum(e.answer_tokens for mb in batches for e in mb)
        step_tokens = 0
        loss_value = 0.0
        if not self.world.distributed:
            for mb in batches:
                loss, tokens = self._loss_sum(mb)
                step_tokens += tokens
                if loss is None:
                    continue
                (loss / max(1, answer)).backward()
                loss_value += float(loss.detach())
            return loss_value, step_tokens, answer
        # divide by the answer tokens of all ranks, times the world size because DDP
        # averages the ranks' gradients: the reduced gradient is the one-process one
        total = distributed.sum_over_ranks(self.world, [answer], self.device)[0]
        scale = self.world.size / max(1.0, total)
        for i, mb in enumerate(batches):
            last = i == len(batches) - 1
            with nullcontext() if last else self.forward.no_sync():
                loss, tokens = self.forward(mb)
                (loss * scale).backward()
            loss_value += float(loss.detach())
            step_tokens += int(tokens)
        loss_value, step_tokens_f = distributed.sum_over_ranks(
            self.world, [loss_value, step_tokens], self.device)
        return loss_value, int(step_tokens_f), int(total)

    def _start(self) -> None:
        """Join the launcher's process group (if any) and check the run folder, on every
        rank before rank 0 creates anything."""
        import torch

        cfg = self.config
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" \
            else cfg.device
        self.world = distributed.join(self.device.split(":")[0])
        if self.world.distributed:
            self.device = self.device.split(":")[0]  # the rank's own GPU is the current one
        if not self.resume and self.out.exists() and any(self.out.iterdir()):
            raise RagtuneError(f"{self.out} already holds a run: pick another --out, or "
                               f"continue it with `ragtune tune lora --resume {self.out}`")
        if self.resume:
            recorded = load_run(self.out).get("distributed") or {}
            self._check_world(int(recorded.get("world_size", 1)), f"{self.out}/run.json")
        distributed.barrier(self.world)
        if self.world.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        distributed.barrier(self.world)

    def run(self) -> dict[str, Any]:
        self.world = distributed.World()
        try:
            self._start()
            return self._run()
        finally:
            distributed.leave(self.world)

    def _run(self) -> dict[str, Any]:
        import torch

        cfg = self.config
        main = self.world.is_main
        self._load()
        self.best = None
        self.tokens_seen = 0
        self.train_seconds = 0.0
        start = self._restore() if self.resume else 0
        self.start_step = start
        info = self._run_info(status="running")
        metrics: Any = _NoFile()
        if main:
            atomic_json(self.out / "run.json", info)
            if self.resume:  # drop lines written after the checkpoint we resumed from
                truncate_metrics(self.out / "metrics.jsonl", start)
            metrics = (self.out / "metrics.jsonl").open("a", encoding="utf-8")
        bar = _progress(self.total_steps, start, enabled=self.progress and main)
        self.model.train()
        try:
            for step in range(start, self.total_steps):
                began = time.perf_counter()
                mine = self.step_records(step)
                batches = [[self.encoded[i] for i in mb] for mb in mine]
                loss_value, step_tokens, answer = self._step(batches)
                norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.requires_grad], cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                seconds = time.perf_counter() - began
                self.train_seconds += seconds
                self.tokens_seen += step_tokens
                row = {"step": step + 1, "epoch": round((step + 1) / self.steps_per_epoch, 4),
                       "loss": loss_value / max(1, answer), "lr": self.scheduler.get_last_lr()[0],
                       "grad_norm": float(norm), "tokens": step_tokens, "answer_tokens": answer,
                       "tokens_per_s": step_tokens / seconds, "elapsed_s": self.train_seconds}
                if self.world.distributed:  # which records each rank trained on
                    row["rank_records"] = distributed.gather(
                        self.world, [self.encoded[i].record_id for mb in mine for i in mb])
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3f}",
                                tok_s=f"{self.tokens_seen / self.train_seconds:,.0f}")
                done = step + 1
                if main and ((cfg.eval_every and done % cfg.eval_every == 0)
                             or done == self.total_steps):
                    result = self.evaluate(done)
                    metrics.write(json.dumps(result) + "\n")
                    metrics.flush()
                    if self._better(result):
                        self.best = result
                        replace_dir(self.out / "adapter", self.model)
                    bar.write(_eval_line(result))
                if (cfg.save_every and done % cfg.save_every == 0) or done == self.total_steps:
                    self._save_checkpoint(done)
        finally:
            bar.close()
            metrics.close()
        info = self._run_info(status="finished")
        if main:
            replace_dir(self.out / "last", self.model)
            self.tokenizer.save_pretrained(str(self.out / "adapter"))
            atomic_json(self.out / "run.json", info)
        distributed.barrier(self.world)  # no rank leaves before the run folder is complete
        return info

    def _run_info(self, status: str) -> dict[str, Any]:
        import torch

        info: dict[str, Any] = {
            "status": status,
            "config": asdict(self.config),
            "base_path": str(self.base_path),
            "versions": _versions(),
            "seed": self.config.seed,
            "data": {"path": str(Path(self.config.data).resolve()),
                     "hashes": self.data_info.get("hashes", {}),
                     "train_records": len(self.train_records),
                     "eval_records": len(self.eval_records)},
            "device": self.device,
            "device_name": (torch.cuda.get_device_name() if self.device == "cuda"
                            else platform.processor() or platform.machine()),
            "precision": self.precision,
            "distributed": {**self.world.to_dict(),
                            "records_per_step": (self.config.batch_size * self.config.grad_accum
                                                 * self.world.size)},
            "steps": self.total_steps,
            "started_at_step": self.start_step,
            "steps_per_epoch": self.steps_per_epoch,
            "trainable_parameters": sum(p.numel() for p in self.model.parameters()
                                        if p.requires_grad),
        }
        if status == "finished":
            info.update(
                best=self.best,
                tokens=self.tokens_seen,
                train_seconds=self.train_seconds,
                tokens_per_s=self.tokens_seen / max(1e-9, self.train_seconds),
                peak_memory_mb=_peak_memory_mb(self.device),
            )
        return info


def _eval_line(result: dict[str, Any]) -> str:
    parts = [f"step {result['step']}"]
    for key in ("eval_loss", "rouge_l", "exact_match"):
        if key in result:
            parts.append(f"{key} {result[key]:.4f}")
    return "eval: " + ", ".join(parts)


class _NoFile:  # metrics of a rank other than 0: written by rank 0 only
    def write(self, text: str) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def write(self, text: str) -> None:
        logger.info(text)
    def close(self) -> None: ...


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)


def train(config: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train a LoRA adapter; returns what ``run.json`` records."""
    return Trainer(config, progress=progress).run()


def resume(run: str | Path, *, progress: bool = True,
           overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Continue ``run`` from its newest checkpoint, with the same config and data order."""
    info = load_run(run)
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in info["config"].items() if k in known}
    values.update(overrides or {})
    values["out"] = str(run)
    return Trainer(TrainConfig(**values), resume=True, progress=progress).run()


