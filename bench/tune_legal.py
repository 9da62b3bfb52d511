"""The legal-summary case: a base model with a long instruction prompt against the same
model fine-tuned with LoRA and given a short one.

Data: ``legal_summarization/all_v1.json`` (terms-of-service clauses with plain-English
reference summaries), split by document (``doc``): no service's terms appear on both
sides. The fine-tuned model trains on the train side with the short prompt; both arms
answer every held-out clause, greedy.

- base: detailed instructions plus five worked examples from the train side, clauses of
  typical length from different services (the usual way to get a house style out of a
  model without training), then the clause;
- fine-tuned: ``Summarise:`` and the clause.

Reported per arm: ROUGE-L F1 (mean over clauses, ragtune's normalised tokens), prompt
tokens per request (chat template included) and latency per request (one request at a
time, so it is what a user waits).

    python bench/tune_legal.py [--epochs 3] [--limit N] [--shots 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time

from _common import RESULTS, data_dir, require, write_result

SHORT = "Summarise:\n{original_text}"
LONG_INSTRUCTIONS = (
    "You are a legal writer who turns clauses from terms of service into plain English for "
    "ordinary readers. Read the clause and write a summary that:\n"
    "- is one short sentence, usually under 20 words;\n"
    "- says what the clause means for the user: what they must do, what they give up, what "
    "the company may do;\n"
    "- uses everyday words, no legal terms, no quotations from the clause;\n"
    "- does not start with 'This clause' or 'The terms', and adds no advice or opinion;\n"
    "- keeps the essential condition or exception if there is one.\n"
    "Here are examples of clauses and their summaries.\n\n{examples}\n\n"
    "Now summarise this clause in the same way.\nClause: {original_text}\nSummary:"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--limit", type=int, default=0, help="held-out clauses (0: all)")
    parser.add_argument("--shots", type=int, default=5, help="worked examples in the long prompt")
    args = parser.parse_args()

    from ragtune.evaluate.metrics import rouge_l
    from ragtune.models.local_generator import LocalGenerator
    from ragtune.tune.config import TrainConfig
    from ragtune.tune.data import load_prepared, load_tokenizer, prepare
    from ragtune.tune.train import train

    work = RESULTS / "tune_legal"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = require(data_dir() / "legal_summarization" / "all_v1.json")
    raw = json.loads(source.read_text())
    tokenizer = load_tokenizer(args.base)
    info = prepare([source], work / "data", tokenizer=tokenizer, base=args.base, split=0.1,
                   group_by="doc", seed=0, template=SHORT, target_field="reference_summary")
    train_records, eval_records, _ = load_prepared(work / "data")
    if args.limit:
        eval_records = eval_records[: args.limit]

    # worked examples for the long prompt: train-side clauses of typical length (nearest
    # the median), from different services, as a user would pick them to show the style
    by_text = {r["original_text"]: r for r in raw.values()}
    train_clauses = [by_text[r["messages"][-2]["content"].split("\n", 1)[1]]
                     for r in train_records]
    median = statistics.median(len(r["original_text"]) for r in train_clauses)
    shots, services = [], set()
    for r in sorted(train_clauses, key=lambda r: abs(len(r["original_text"]) - median)):
        if r["doc"] not in services and len(shots) < args.shots:
            shots.append(r)
            services.add(r["doc"])
    examples = "\n\n".join(f"Clause: {r['original_text']}\nSummary: {r['reference_summary']}"
                           for r in shots)

    started = time.perf_counter()
    run = train(TrainConfig(data=str(work / "data"), out=str(work / "run"), base=args.base,
                            epochs=args.epochs, learning_rate=args.lr, batch_size=8,
                            eval_every=0, eval_samples=16, max_new_tokens=args.max_new_tokens,
                            best_metric="rouge_l", save_every=0), progress=False)
    train_wall = time.perf_counter() - started

    arms = {
        "base, long prompt": (LocalGenerator(args.base), lambda text: LONG_INSTRUCTIONS.format(
            examples=examples, original_text=text)),
        "fine-tuned, short prompt": (LocalGenerator(args.base, adapter=work / "run"),
                                     lambda text: SHORT.format(original_text=text)),
    }
    result: dict = {"base": args.base, "shots": len(shots), "data": info["counts"],
                    "split": info["split"],
                    "training": {k: run[k] for k in ("steps", "tokens_per_s", "train_seconds",
                                                     "precision", "best")},
                    "training_wall_s": train_wall, "held_out": len(eval_records), "arms": {}}
    for name, (generator, prompt) in arms.items():
        scores, tokens, latency, samples = [], [], [], []
        for r in eval_records:
            text = r["messages"][-2]["content"].split("\n", 1)[1]
            messages = [{"role": "user", "content": prompt(text)}]
            began = time.perf_counter()
            out = generator.generate(messages, max_tokens=args.max_new_tokens)
            latency.append(time.perf_counter() - began)
            tokens.append(out.prompt_tokens)
            scores.append(rouge_l(out.text, [r["messages"][-1]["content"]]))
            samples.append({"id": r["id"], "answer": out.text})
        result["arms"][name] = {
            "rouge_l": 100 * statistics.mean(scores),
            "prompt_tokens": statistics.mean(tokens),
            "latency_s_p50": statistics.median(latency),
            "latency_s_mean": statistics.mean(latency),
            "samples": samples[:5],
        }
        a = result["arms"][name]
        print(f"| {name} | {a['rouge_l']:.1f} | {a['prompt_tokens']:.0f} | "
              f"{a['latency_s_p50']:.2f} s |", flush=True)
    base, tuned = result["arms"].values()
    result["rouge_l_gain"] = tuned["rouge_l"] - base["rouge_l"]
    result["prompt_ratio"] = base["prompt_tokens"] / tuned["prompt_tokens"]
    print(f"ROUGE-L gain {result['rouge_l_gain']:+.1f} points, prompt "
          f"{result['prompt_ratio']:.1f}x shorter")
    write_result("tune_legal", result)


if __name__ == "__main__":
    main()
