"""Data-parallel LoRA: ``ragtune tune lora`` under torchrun with two gloo processes on this
machine against the same recipe in one process, on the tiny random Llama."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ragtune.errors import RagtuneError
from ragtune.tune.config import TrainConfig
from ragtune.tune.train import resume, train
from tests.conftest import qa_records, write_prepared

RECIPE = {"rank": 4, "alpha": 8, "dropout": 0.0, "learning_rate": 3e-2, "max_steps": 8,
          "eval_every": 0, "eval_samples": 2, "max_new_tokens": 2, "save_every": 4,
          "precision": "fp32", "warmup_ratio": 0.1, "seed": 0}
FLAGS = ["--rank", "4", "--alpha", "8", "--dropout", "0", "--lr", "3e-2", "--max-steps", "8",
         "--eval-every", "0", "--eval-samples", "2", "--max-new-tokens", "2",
         "--save-every", "4", "--precision", "fp32", "--warmup", "0.1", "--seed", "0", "-q"]
# the two runs differ only in the order floating-point sums are taken (two packed halves
# and a gradient all-reduce instead of one batch)
TOLERANCE = 1e-4


def steps(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


def torchrun(*args: str | Path, processes: int = 2) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc-per-node={processes}", "-m", "ragtune", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=240, check=False)


def test_two_processes_reach_the_one_process_loss_on_disjoint_data(tiny_model, tmp_path):
    ids = [f"r{i}" for i in range(32)]
    data = write_prepared(tmp_path / "data", qa_records(32), qa_records(2, offset=1))
    one = tmp_path / "one"
    train(TrainConfig(data=str(data), out=str(one), base=str(tiny_model), batch_size=8,
                      **RECIPE), progress=False)
    two = tmp_path / "two"  # 4 records a process: the same 8 records a step
    done = torchrun("tune", "lora", "--data", data, "--out", two, "--base", tiny_model,
                    "--batch-size", "4", *FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 8 steps") == 1  # rank 0 alone reports

    a, b = steps(one), steps(two)
    assert [r["step"] for r in b] == list(range(1, 9))
    assert b[-1]["loss"] < b[0]["loss"] * 0.7  # it learns
    for x, y in zip(a, b, strict=True):
        assert y["loss"] == pytest.approx(x["loss"], rel=TOLERANCE)
        assert y["answer_tokens"] == x["answer_tokens"]  # the same records, all of them
    for epoch in (b[:4], b[4:]):  # 32 records, 8 a step: each epoch is 4 steps
        seen = [i for r in epoch for rank in r["rank_records"] for i in rank]
        assert sorted(seen) == sorted(ids)  # every record once per epoch
        for r in epoch:
            first, second = r["rank_records"]
            assert len(first) == len(second) == 4 and not set(first) & set(second)

    from safetensors.torch import load_file

    wa = load_file(str(one / "last" / "adapter_model.safetensors"))
    wb = load_file(str(two / "last" / "adapter_model.safetensors"))
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-3, atol=1e-5)
    info = json.loads((two / "run.json").read_text())
    assert info["status"] == "finished"
    assert info["distributed"] == {"world_size": 2, "backend": "gloo", "records_per_step": 8}
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["step-4", "step-8"]

    with pytest.raises(RagtuneError, match=r"trained by 2 process.*this resume runs 1.*"
                                           r"--nproc-per-node 2"):
        resume(two, progress=False, overrides={"max_steps": 10})


def test_a_one_process_run_is_not_resumed_by_two(tiny_model, tmp_path):
    data = write_prepared(tmp_path / "data", qa_records(8), [])
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), out=str(run), base=str(tiny_model), batch_size=4,
                      **{**RECIPE, "max_steps": 2}), progress=False)
    done = torchrun("tune", "lora", "--resume", run, "--max-steps", "4", "-q")
    assert done.returncode == 1
    assert "trained by 1 process(es)" in done.stdout + done.stderr
    assert "without a launcher" in done.stdout + done.stderr
    assert len(steps(run)) == 2  # nothing was trained or rewritten


def test_accelerate_launch_runs_the_same_recipe(tiny_model, tmp_path):
    pytest.importorskip("accelerate", reason="accelerate is not installed")
    data = write_prepared(tmp_path / "data", qa_records(16), [])
    one = tmp_path / "one"
    train(TrainConfig(data=str(data), out=str(one), base=str(tiny_model), batch_size=8,
                      **{**RECIPE, "max_steps": 2}), progress=False)
    run = tmp_path / "run"
    # --multi_gpu is accelerate's multi-process launcher (torchrun underneath); on a
    # machine without GPUs its processes train on the CPU over gloo
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
         "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "ragtune", "tune", "lora", "--data", str(data),
         "--out", str(run), "--base", str(tiny_model), "--batch-size", "4",
         *FLAGS[:FLAGS.index("--max-steps")], "--max-steps", "2",
         *FLAGS[FLAGS.index("--max-steps") + 2:]],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["distributed"]["world_size"] == 2
    for x, y in zip(steps(one), steps(run), strict=True):
        assert y["loss"] == pytest.approx(x["loss"], rel=TOLERANCE)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="QLoRA (4-bit bitsandbytes) and bf16 training need a CUDA GPU; "
                           "this machine has none")
def test_qlora_on_cuda_learns(tiny_model, tmp_path):
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes: "
                                               "pip install bitsandbytes")
    data = write_prepared(tmp_path / "data", qa_records(16), [])
    info = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), base=str(tiny_model),
                             batch_size=4, device="cuda", qlora=True,
                             **{**RECIPE, "precision": "bf16"}), progress=False)
    rows = steps(tmp_path / "run")
    assert info["device"] == "cuda" and info["precision"] == "bf16"
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert info["peak_memory_mb"] > 0


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason="DDP over NCCL needs two CUDA GPUs; this machine has "
                           f"{torch.cuda.device_count()}")
def test_two_gpus_with_nccl(tiny_model, tmp_path):
    data = write_prepared(tmp_path / "data", qa_records(16), [])
    done = torchrun("tune", "lora", "--data", data, "--out", tmp_path / "run", "--base",
                    tiny_model, "--batch-size", "4", "--device", "cuda", *FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["distributed"]["backend"] == "nccl" and info["device"] == "cuda"
