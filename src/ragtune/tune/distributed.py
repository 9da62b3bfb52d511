"""Data-parallel training (DDP) under ``torchrun`` or ``accelerate launch``.

A launcher starts the same ``ragtune tune lora`` command once per device and tells each
copy who it is through the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``); :func:`join` reads that and joins the process group
(``gloo`` on CPU, ``nccl`` on CUDA). Without a launcher the world is one process and
nothing here does anything.

The recipe stays the one of :mod:`ragtune.tune.train`: ``batch_size`` is records per
micro-batch *per process*, so an optimizer step sees ``batch_size * grad_accum *
world_size`` records. The step's records are chosen by the same seeded permutation as in
one process and dealt out round robin (rank ``r`` takes records ``r, r + W, ...``), so
ranks see disjoint data and their union is the one-process batch. Each rank's summed
answer-token loss is divided by the step's answer tokens over *all* ranks and multiplied
by ``W`` (DDP averages gradients over ranks), so the synchronised gradient is the one the
single process computes: same global batch, same loss.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.errors import ConfigError

__all__ = ["World", "is_main_process", "join"]

_LAUNCH = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = ""  # gloo | nccl; empty with one process
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def to_dict(self) -> dict[str, Any]:
        return {"world_size": self.size, "backend": self.backend or None}


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not launched by torchrun at all)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def join(device: str) -> World:
    """Join the process group that the launcher's environment describes.

    ``device`` is ``cpu`` or ``cuda``; on CUDA each process takes the GPU of its
    ``LOCAL_RANK``.
    """
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    missing = [k for k in _LAUNCH if not os.environ.get(k)]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE is {size} but {', '.join(missing)} is not set: start distributed "
            "training with a launcher: `torchrun --nproc-per-node N -m ragtune tune lora ...` "
            "(or `accelerate launch --multi_gpu --num_processes N -m ragtune ...`)")
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local} but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s): start at most "
                              "that many processes per node")
        torch.cuda.set_device(local)
    owns = not dist.is_initialized()
    if owns:
        from datetime import timedelta

        # the other ranks wait in a collective while rank 0 evaluates (generation) and
        # saves: the backends' default limits (10 to 30 minutes) are too short for that
        dist.init_process_group(backend, timeout=timedelta(hours=2))
    return World(rank=rank, size=size, local_rank=local, backend=backend, owns_group=owns)


def leave(world: World) -> None:
    if world.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def sum_over_ranks(world: World, values: Sequence[float], device: str) -> list[float]:
    """Each value summed over all ranks (float64, so token counts stay exact)."""
    if not world.distributed:
        return list(values)
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(list(values), dtype=torch.float64,
                          device="cuda" if device == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def gather(world: World, value: Any) -> list[Any]:
    """``value`` from every rank, in rank order (any picklable object)."""
    if not world.distributed:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def share(world: World, chosen: list[int]) -> list[int]:
    """This rank's records of a step: every ``size``-th one, from its rank on."""
    return chosen[world.rank::world.size]


def data_parallel(world: World, model: Any, loss_of: Callable[[Any], tuple[Any, int]]) -> Any:
    """A module whose forward is ``loss_of(records)``, wrapped in DDP for several processes.

    The training loss bypasses the model's own ``forward`` (it projects only the answer
    positions onto the vocabulary), so DDP wraps a module whose forward *is* that loss: one
    forward and one backward per micro-batch, as DDP expects. A rank with no answer tokens
    in a micro-batch still returns a loss tied to every trainable parameter (zero), so that
    every rank takes part in each gradient reduction.
    """
    import torch

    class _Loss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, records: Any) -> tuple[Any, Any]:
            loss, tokens = loss_of(records)
            if loss is None:
                loss = sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
            return loss, torch.tensor(tokens)

    module = _Loss()
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=None)
