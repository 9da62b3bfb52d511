"""Data-parallel LoRA on this machine: one process against two under torchrun (gloo).

The same recipe and global batch for both: ``ragtune tune lora`` with ``--batch-size 8``
in one process, and ``torchrun --nproc-per-node 2 ... --batch-size 4`` (4 records per
process, 8 per step); dropout 0, so that the two runs train on the same gradient and their
losses can be compared step by step. Data: ``instructions/alpaca_en_demo.json`` prepared
for the base model (90% train, seed 0). One process uses all the CPU's threads; torchrun
gives each of its processes one (``OMP_NUM_THREADS=1``), the launcher's default.

Reported for each: tokens per second (``run.json``, non-padding tokens over the optimizer
steps, every rank's tokens counted), the loss of the last step, the largest relative
difference of any step's loss between the two runs, and the eval loss at the end.

    python bench/tune_ddp.py [--steps 20] [--base smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _common import RESULTS, data_dir, require, write_result

RECIPE = ["--dropout", "0", "--eval-every", "0", "--eval-samples", "0", "--save-every", "0",
          "--warmup", "0.1", "--seed", "0", "-q"]


def run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")


def step_rows(folder: Path) -> list[dict]:
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


def losses(folder: Path) -> list[float]:
    return [r["loss"] for r in step_rows(folder)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--base", default="smollm2-135m-instruct")
    args = parser.parse_args()
    work = RESULTS / "tune_ddp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = require(data_dir() / "instructions" / "alpaca_en_demo.json")
    python = sys.executable
    env = dict(os.environ)
    run([python, "-m", "ragtune", "tune", "prepare", str(source), "--out", str(work / "data"),
         "--base", args.base, "--split", "0.1"], env)
    common = ["tune", "lora", "--data", str(work / "data"), "--base", args.base,
              "--max-steps", str(args.steps), *RECIPE]
    run([python, "-m", "ragtune", *common, "--out", str(work / "one"), "--batch-size", "8"],
        env)
    run([python, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         "-m", "ragtune", *common, "--out", str(work / "two"), "--batch-size", "4"],
        {**env, "OMP_NUM_THREADS": "1"})
    result: dict[str, object] = {"steps": args.steps, "base": args.base,
                                 "records_per_step": 8}
    for name in ("one", "two"):
        info = json.loads((work / name / "run.json").read_text())
        result[name] = {"processes": info["distributed"]["world_size"],
                        "tokens_per_s": info["tokens_per_s"], "tokens": info["tokens"],
                        "train_seconds": info["train_seconds"],
                        "final_loss": losses(work / name)[-1],
                        "eval_loss": (info.get("best") or {}).get("eval_loss"),
                        # robust to a step slowed by start-up or by other work
                        "median_step_tokens_per_s": statistics.median(
                            r["tokens_per_s"] for r in step_rows(work / name)),
                        "precision": info["precision"]}
    a, b = losses(work / "one"), losses(work / "two")
    result["max_relative_loss_difference"] = max(abs(x - y) / x for x, y in zip(a, b,
                                                                                strict=True))
    one, two = result["one"], result["two"]
    assert isinstance(one, dict) and isinstance(two, dict)
    result["speedup"] = two["tokens_per_s"] / one["tokens_per_s"]
    result["median_speedup"] = (two["median_step_tokens_per_s"]
                                / one["median_step_tokens_per_s"])
    print(f"{'processes':<10} {'tokens/s':>9} {'median step':>12} {'final loss':>11} "
          f"{'eval loss':>10}")
    for row in (one, two):
        print(f"{row['processes']:<10} {row['tokens_per_s']:>9.0f} "
              f"{row['median_step_tokens_per_s']:>12.0f} {row['final_loss']:>11.4f} "
              f"{row['eval_loss'] or float('nan'):>10.4f}")
    print(f"2 processes / 1: {result['speedup']:.2f}x tokens/s over the run, "
          f"{result['median_speedup']:.2f}x at the median step; largest per-step loss "
          f"difference {result['max_relative_loss_difference']:.1e} (relative)")
    print(f"wrote {write_result('tune_ddp', result)}")


if __name__ == "__main__":
    main()
