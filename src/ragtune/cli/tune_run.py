"""``ragtune tune lora`` and ``ragtune tune export``: train and export LoRA adapters."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import JSON_OPTION, print_json
from ragtune.errors import ConfigError


def lora(
    data: Path = typer.Option(None, "--data", help="Folder written by `ragtune tune prepare`."),
    out: Path = typer.Option(None, "--out", help="New run folder."),
    resume_run: Path = typer.Option(None, "--resume",
                                    help="Continue this run folder from its last checkpoint."),
    base: str = typer.Option("smollm2-135m-instruct", "--base",
                             help="Bundled model name or transformers model folder."),
    rank: int = typer.Option(16, "--rank", "-r", help="LoRA rank."),
    alpha: int = typer.Option(32, "--alpha", help="LoRA alpha."),
    dropout: float = typer.Option(0.05, "--dropout", help="LoRA dropout."),
    target_modules: str = typer.Option("all-linear", "--target-modules",
                                       help="all-linear, or comma-separated module names."),
    qlora: bool = typer.Option(False, "--qlora", help="4-bit base (bitsandbytes, CUDA only)."),
    learning_rate: float = typer.Option(2e-4, "--lr", help="Peak learning rate."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the training data."),
    max_steps: int = typer.Option(0, "--max-steps",
                                  help="Optimizer steps (overrides epochs; with --resume, "
                                       "the new total)."),
    batch_size: int = typer.Option(8, "--batch-size",
                                   help="Records per micro-batch (per process under torchrun)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per step."),
    max_length: int = typer.Option(2048, "--max-length", help="Tokens kept per record."),
    pack_length: int = typer.Option(512, "--pack-length", help="Tokens per packed row."),
    warmup_ratio: float = typer.Option(0.03, "--warmup", help="Share of steps warming up."),
    seed: int = typer.Option(0, "--seed", help="Random seed (data order, dropout)."),
    precision: str = typer.Option("auto", "--precision", help="auto, bf16 or fp32."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing",
                                                help="Trade compute for memory."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    eval_every: int = typer.Option(0, "--eval-every",
                                   help="Evaluate every N steps (0: at the end only)."),
    eval_samples: int = typer.Option(16, "--eval-samples",
                                     help="Eval records answered by generation."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens",
                                       help="Tokens generated per eval answer."),
    best_metric: str = typer.Option("rouge_l", "--best-metric",
                                    help="rouge_l, exact_match or eval_loss."),
    save_every: int = typer.Option(50, "--save-every", help="Checkpoint every N steps."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a LoRA (or QLoRA) adapter on prepared data; `--resume RUN` continues one.

    Data-parallel on several processes under a launcher: `torchrun --nproc-per-node N -m
    ragtune tune lora ...` (--batch-size is then per process).
    """
    from ragtune.tune.config import TrainConfig
    from ragtune.tune.train import resume, train

    if resume_run is not None:
        info = resume(resume_run, progress=not quiet,
                      overrides={"max_steps": max_steps} if max_steps else None)
    else:
        if data is None or out is None:
            raise ConfigError("give --data DIR and --out RUN (or --resume RUN)")
        modules: list[str] | str = (target_modules if target_modules == "all-linear"
                                    else [m.strip() for m in target_modules.split(",")])
        config = TrainConfig(
            data=str(data), out=str(out), base=base, rank=rank, alpha=alpha, dropout=dropout,
            target_modules=modules, qlora=qlora, learning_rate=learning_rate, epochs=epochs,
            max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
            max_length=max_length, pack_length=pack_length, warmup_ratio=warmup_ratio,
            seed=seed, precision=precision,
            gradient_checkpointing=gradient_checkpointing, device=device,
            eval_every=eval_every, eval_samples=eval_samples, max_new_tokens=max_new_tokens,
            best_metric=best_metric, save_every=save_every)
        info = train(config, progress=not quiet)
    from ragtune.tune.distributed import is_main_process

    if not is_main_process():  # under torchrun every rank runs this; rank 0 reports
        return
    if as_json:
        print_json(info)
        return
    run = Path(info["config"]["out"])
    best = info.get("best") or {}
    if info["started_at_step"] >= info["steps"]:
        typer.echo(f"{run} had already finished its {info['steps']} steps: nothing to train "
                   "(give --max-steps N with --resume to train further)")
        return
    typer.echo(f"trained {info['steps']} steps on {info['device']} ({info['precision']}): "
               f"{info['tokens_per_s']:,.0f} tokens/s, {info['train_seconds']:.1f} s, "
               f"peak memory {info['peak_memory_mb']:,.0f} MB")
    if best:
        scores = ", ".join(f"{k} {best[k]:.4f}" for k in ("eval_loss", "rouge_l", "exact_match")
                           if k in best)
        typer.echo(f"best checkpoint: step {best['step']} ({scores})")
    typer.echo(f"adapter: {run / 'adapter'}")
    typer.echo(f"use it:  ragtune generate \"...\" --adapter {run}")


def export_run(
    run: Path = typer.Argument(..., help="Run folder (or PEFT adapter folder)."),
    out: Path = typer.Option(..., "--out", help="New folder to write."),
    merge: bool = typer.Option(False, "--merge",
                               help="Merge into the base weights (a plain transformers model)."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, bfloat16 or float16."),
    gguf: bool = typer.Option(False, "--gguf",
                              help="Write the adapter as one GGUF LoRA file (llama.cpp)."),
    name: str = typer.Option(None, "--name", help="The adapter's name on a vLLM server "
                             "(--lora-modules NAME=DIR; default: the run folder's name)."),
) -> None:
    """Write the adapter in PEFT's layout, with --merge the merged model, or with --gguf
    a GGUF LoRA file for llama.cpp."""
    from ragtune.tune.export import export, vllm_command

    if gguf:
        from ragtune.models.gguf_lora import write_gguf_lora
        from ragtune.models.local_generator import resolve_model_dir
        from ragtune.models.peft_adapters import adapter_dir, base_of

        if out.exists():
            raise typer.BadParameter(f"{out} exists; give a new file name", param_hint="--out")
        folder = adapter_dir(run)
        write_gguf_lora(folder, resolve_model_dir(base_of(folder)), out)
        typer.echo(f"GGUF LoRA written to {out} (base {base_of(folder)}); run it with "
                   f"llama-server -m BASE.gguf --lora {out}, or in ragtune with "
                   f"--generator llamacpp --adapter {run}")
        return
    result = export(run, out, merge=merge, dtype=dtype, name=name)
    if merge:
        typer.echo(f"merged model written to {result['out']} (base {result['base']}); "
                   "load it with AutoModelForCausalLM.from_pretrained or "
                   f"`vllm serve {result['out']}`")
    else:
        typer.echo(f"adapter {result['name']!r} written to {result['out']}; serve it with "
                   f"vLLM:\n  {vllm_command(result)}\nand ask for it with --generator openai "
                   f"--base-url http://HOST:8000/v1 --model {result['base_path']} "
                   f"--adapter {result['name']}")
