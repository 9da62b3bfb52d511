"""LoRA training speed: ragtune's trainer against TRL's SFTTrainer, in one run.

Same base model, LoRA config (r 16, alpha 32, dropout 0.05, all linear layers), data
(``instructions/alpaca_en_demo.json``, 90% train / 10% eval, seed 0), records per
optimizer step (8), learning rate and schedule (2e-4, 3% warmup, cosine), number of
optimizer steps, answer-only loss, and chat template. Everything else is each tool's own
default: TRL pads each batch and turns on gradient checkpointing and bf16 autocast;
ragtune packs records without padding, keeps the frozen base in bf16 where the CPU has
bf16 kernels, and projects only answer positions onto the vocabulary.

Reported for each: non-padding tokens per second over the optimizer steps (the same
tokens for both: each trains on the same records), and the eval loss of the final
adapter measured by one evaluator (fp32, mean cross-entropy over the answer tokens of
the eval records).

    python bench/tune_speed.py [--steps 30] [--base smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

from _common import RESULTS, data_dir, require, write_result

LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}


def eval_loss(base_path, adapter, records, tokenizer) -> float:
    """Mean answer-token cross-entropy of ``adapter`` on ``records``, fp32."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ragtune.tune.encode import encode_record, row_tensors
    from ragtune.tune.train import answer_loss

    model = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32,
                                                 attn_implementation="sdpa")
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for r in records:
            enc = encode_record(tokenizer, r["messages"], 1024)
            loss = answer_loss(model, row_tensors([enc], [0]))
            if loss is not None:
                total += float(loss)
                count += enc.answer_tokens
    return total / count


def run_ragtune(data, out, base, steps) -> dict:
    from ragtune.tune.config import TrainConfig
    from ragtune.tune.train import train

    cfg = TrainConfig(data=str(data), out=str(out), base=base, rank=LORA["r"],
                      alpha=LORA["lora_alpha"], dropout=LORA["lora_dropout"],
                      learning_rate=2e-4, batch_size=8, max_steps=steps, warmup_ratio=0.03,
                      eval_samples=0, eval_max_records=0, save_every=0)
    info = train(cfg, progress=False)
    return {"tokens": info["tokens"], "seconds": info["train_seconds"],
            "tokens_per_s": info["tokens_per_s"], "peak_memory_mb": info["peak_memory_mb"],
            "precision": info["precision"], "adapter": str(out / "last")}


def run_trl(train_records, out, base_path, steps, fp32=False) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    rows = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]}
            for r in train_records]
    timing = {"seconds": 0.0, "tokens": 0}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            timing["began"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            timing["seconds"] += time.perf_counter() - timing["began"]

    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=8,
                     learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=0.03,
                     seed=0, save_strategy="no", report_to=[], logging_steps=10,
                     dataloader_num_workers=0,
                     # required to train on a CPU at all; bf16 stays TRL's default unless
                     # --trl-fp32 (bf16 autocast is slower than fp32 on CPUs without AMX)
                     use_cpu=not torch.cuda.is_available(), **({"bf16": False} if fp32 else {}))
    trainer = SFTTrainer(model=str(base_path), args=args,
                         train_dataset=Dataset.from_list(rows),
                         peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA),
                         callbacks=[Clock()])
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        mask = batch.get("attention_mask")
        timing["tokens"] += int(mask.sum()) if mask is not None else batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting
    trainer.train()
    trainer.model.save_pretrained(str(out / "adapter"))
    peak = 0.0
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
    return {"tokens": timing["tokens"], "seconds": timing["seconds"],
            "tokens_per_s": timing["tokens"] / timing["seconds"],
            "bf16": bool(args.bf16), "gradient_checkpointing": bool(args.gradient_checkpointing),
            "peak_memory_mb": peak or None, "adapter": str(out / "adapter")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--only", choices=["ragtune", "trl"], help="run one side only")
    parser.add_argument("--trl-fp32", action="store_true",
                        help="TRL without its default bf16 autocast")
    args = parser.parse_args()

    from ragtune.models.local_generator import resolve_model_dir
    from ragtune.tune.data import load_prepared, load_tokenizer, prepare

    work = RESULTS / "tune_speed"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = require(data_dir() / "instructions" / "alpaca_en_demo.json")
    tokenizer = load_tokenizer(args.base)
    prepare([source], work / "data", tokenizer=tokenizer, base=args.base, split=0.1, seed=0)
    train_records, eval_records, _ = load_prepared(work / "data")
    base_path = resolve_model_dir(args.base)

    result: dict = {"base": args.base, "steps": args.steps, "records_per_step": 8,
                    "lora": LORA, "train_records": len(train_records),
                    "eval_records": len(eval_records)}
    if args.only != "trl":
        result["ragtune"] = run_ragtune(work / "data", work / "ragtune", args.base, args.steps)
        result["ragtune"]["eval_loss"] = eval_loss(base_path, result["ragtune"]["adapter"],
                                                   eval_records, tokenizer)
        print("ragtune", json.dumps(result["ragtune"]), flush=True)
    if args.only != "ragtune":
        result["trl"] = run_trl(train_records, work / "trl", base_path, args.steps,
                                fp32=args.trl_fp32)
        result["trl"]["eval_loss"] = eval_loss(base_path, result["trl"]["adapter"],
                                               eval_records, tokenizer)
        print("trl", json.dumps(result["trl"]), flush=True)
    if "ragtune" in result and "trl" in result:
        result["speedup"] = result["ragtune"]["tokens_per_s"] / result["trl"]["tokens_per_s"]
        result["eval_loss_delta"] = result["ragtune"]["eval_loss"] - result["trl"]["eval_loss"]
        print(f"| ragtune | {result['ragtune']['tokens_per_s']:,.0f} tok/s | eval loss "
              f"{result['ragtune']['eval_loss']:.4f} |")
        print(f"| TRL SFTTrainer | {result['trl']['tokens_per_s']:,.0f} tok/s | eval loss "
              f"{result['trl']['eval_loss']:.4f} |")
        print(f"speed-up {result['speedup']:.2f}x, eval loss difference "
              f"{result['eval_loss_delta']:+.4f}")
    write_result("tune_speed", result)


if __name__ == "__main__":
    main()
