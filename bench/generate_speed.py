"""Decode speed of the bundled generator: ragtune's decode loops against transformers.generate.

Each prompt is a RAG prompt of about 1,500 tokens built the way ``ask`` builds it: a SciFact
test question with its relevant abstracts and then further abstracts as numbered sources.
The same prompts go through ``transformers.generate`` in fp32 (the baseline) and through
ragtune's ``exact`` and ``fast`` decoders, each without and with prompt-lookup drafting,
greedy, in one run, one after the other per prompt. By default every run produces
``--tokens`` tokens, as ``min_new_tokens`` makes transformers do, so decode rates compare
like with like; ``--stop-at-eos`` ends each answer where the model ends it.

Reported per engine: time to first token (prefill), decode tokens/s after the first token,
and the share of generated tokens identical to the baseline's at the same position.

    python bench/generate_speed.py [--prompts 8] [--tokens 128] [--context 1500]
                                   [--decoders exact,fp16,fast] [--lookups 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ragtune.config import GeneratorSettings
from ragtune.models.local_generator import LocalGenerator
from ragtune.rag.prompts import build_messages
from ragtune.types import Chunk

from _common import data_dir, require, write_result


def rag_prompts(generator: LocalGenerator, n: int, context: int) -> list[list[int]]:
    """Token ids of ``n`` SciFact RAG prompts of about ``context`` tokens each."""
    folder = require(data_dir() / "scifact")
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    by_id = {str(d["_id"]): d for d in corpus}
    queries = {str(q["_id"]): q["text"] for q in map(json.loads, (folder / "queries.jsonl").open())}
    relevant: dict[str, list[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, _ = line.split("\t")
        relevant.setdefault(qid, []).append(did)
    prompts = []
    for i, (qid, dids) in enumerate(sorted(relevant.items())[:n]):
        docs = [by_id[d] for d in dids] + corpus[i * 40:(i + 1) * 40]
        sources: list[Chunk] = []
        for d in docs:
            text = d["text"]
            sources.append(Chunk(id=str(d["_id"]), source=f"{d['_id']}.txt", text=text, start=0,
                                 end=len(text), title=d["title"]))
            ids = generator._encode(build_messages(queries[qid], sources))["input_ids"][0]
            if len(ids) >= context:
                break
        prompts.append(ids.tolist())
    return prompts


def baseline_run(model, prompt: list[int], tokens: int, ignore_eos: bool):  # type: ignore[no-untyped-def]
    ids = torch.tensor([prompt])
    kwargs = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=2)
    with torch.inference_mode():
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=1, **kwargs)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=tokens,
                             min_new_tokens=tokens if ignore_eos else 0, **kwargs)
        total = time.perf_counter() - start
    return out[0, len(prompt):].tolist(), ttft, total


def decoder_run(generator: LocalGenerator, prompt: list[int], tokens: int, ignore_eos: bool,  # type: ignore[no-untyped-def]
                lookup: int):
    assert generator.decoder is not None
    start = time.perf_counter()
    stream = generator.decoder.tokens(prompt, tokens, eos=generator.eos_ids,
                                      min_new_tokens=tokens if ignore_eos else 0, lookup=lookup)
    out = [next(stream)]
    ttft = time.perf_counter() - start
    out += list(stream)
    return out, ttft, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--context", type=int, default=1500, help="prompt tokens")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--stop-at-eos", action="store_true",
                        help="end each answer at the end-of-sequence token")
    parser.add_argument("--lookups", default="",
                        help="prompt-lookup draft lengths to compare, e.g. 3,8 (default: the "
                             "generator's default)")
    parser.add_argument("--decoders", default="exact,fp16,fast",
                        help="ragtune decoders to run beside the baseline")
    args = parser.parse_args()
    ignore_eos = not args.stop_at_eos
    torch.manual_seed(0)
    decoders = [d for d in args.decoders.split(",") if d]
    generators = {name: LocalGenerator(args.model, decoder=name)
                  for name in ("transformers", *decoders)}
    lookup = GeneratorSettings().prompt_lookup
    lookups = [int(n) for n in args.lookups.split(",")] if args.lookups else [lookup]
    engines = {"transformers": (generators["transformers"], 0)}
    for name in decoders:
        engines[name] = (generators[name], 0)
        engines.update({f"{name} + prompt lookup {n}": (generators[name], n) for n in lookups})
    prompts = rag_prompts(generators["transformers"], args.prompts, args.context)
    runs: dict[str, list[tuple[list[int], float, float]]] = {name: [] for name in engines}
    for i, prompt in enumerate(prompts):
        for name, (generator, drafts) in engines.items():
            if name == "transformers":
                run = baseline_run(generator.model, prompt, args.tokens, ignore_eos)
            else:
                run = decoder_run(generator, prompt, args.tokens, ignore_eos, drafts)
            runs[name].append(run)
            print(f"prompt {i} ({len(prompt)} tokens) {name}: {len(run[0])} tokens, "
                  f"ttft {run[1]:.2f} s, total {run[2]:.2f} s", flush=True)

    base = runs["transformers"]
    result: dict = {"prompt_lookup": lookup, "prompts": len(prompts),
                    "prompt_tokens": statistics.mean(map(len, prompts)),
                    "tokens": args.tokens, "ignore_eos": ignore_eos, "engines": {}}
    print(f"\n{len(prompts)} prompts of {result['prompt_tokens']:.0f} tokens on average, "
          f"{args.tokens} new tokens, greedy")
    print("| engine | time to first token | decode tokens/s | x baseline | same tokens |")
    print("|---|---|---|---|---|")
    for name, engine_runs in runs.items():
        decoded = sum(len(out) - 1 for out, _, _ in engine_runs)
        decode_s = sum(total - ttft for _, ttft, total in engine_runs)
        rate = decoded / decode_s
        base_rate = sum(len(o) - 1 for o, _, _ in base) / sum(t - f for _, f, t in base)
        same = sum(a == b for (o, _, _), (b_o, _, _) in zip(engine_runs, base, strict=True)
                   for a, b in zip(o, b_o, strict=False))
        compared = sum(max(len(o), len(b_o)) for (o, _, _), (b_o, _, _)
                       in zip(engine_runs, base, strict=True))
        identical = sum(o == b_o for (o, _, _), (b_o, _, _) in zip(engine_runs, base, strict=True))
        ttft = statistics.median(t for _, t, _ in engine_runs)
        result["engines"][name] = {
            "ttft_s_p50": ttft, "decode_tokens_per_s": rate, "speedup": rate / base_rate,
            "same_token_share": same / compared, "identical_answers": identical}
        print(f"| {name} | {ttft:.2f} s | {rate:.1f} | {rate / base_rate:.2f}x | "
              f"{same / compared:.1%} ({identical}/{len(prompts)} answers identical) |")
    fast = generators["fast"].decoder if "fast" in generators else None
    if fast is not None:
        result["fast_packed_share"] = fast.packed_share
    write_result("generate_speed", result)


if __name__ == "__main__":
    main()
