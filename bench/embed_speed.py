"""Embedding speed on the SciFact corpus: ragtune's embedder against sentence-transformers.

Every corpus record (title and abstract, truncated at the model's 256 tokens as
sentence-transformers does) is embedded by each engine in one run, and the 300 test
queries with it; dense nDCG@10 comes from exact cosine search over the whole documents
(the setting of the model card's MTEB figure, 0.645). Tokens/s counts the tokens the model
reads (after truncation), the same count for every engine.

Engines: ``sentence-transformers fp32`` (the baseline: the model loaded with
``precision="fp32"``), ``ragtune`` (the default ``SentenceTransformerEmbedder``: int8 linear
layers where the CPU has int8 kernels, ragtune's native kernel on AVX-512 VNNI), ``torch
dynamic int8`` (fbgemm's layers at 32 texts a batch, the default before the native
kernel) and ``bf16 autocast`` (the fp32 model under ``torch.autocast``, not adopted).

    python bench/embed_speed.py [--docs N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from statistics import mean

import numpy as np
import torch

from ragtune.evaluate.datasets import load_beir
from ragtune.evaluate.metrics import ndcg_at_k
from ragtune.models.embedders import SentenceTransformerEmbedder

from _common import data_dir, require, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=0, help="first N records (0: all)")
    args = parser.parse_args()
    corpus, queries, qrels = load_beir(require(data_dir() / "scifact"), "test")
    if args.docs:
        corpus = corpus[: args.docs]
    texts = [f"{d.get('title', '')} {d['text']}".strip() for d in corpus]
    ids = [str(d["_id"]) for d in corpus]
    qids = [q for q in qrels if q in queries]
    ragtune = SentenceTransformerEmbedder("all-minilm-l6-v2")
    model = SentenceTransformerEmbedder("all-minilm-l6-v2", precision="fp32")._model
    tokens = sum(min(n, model.max_seq_length) for n in ragtune.count_tokens(texts))

    def st(batch: list[str]) -> np.ndarray:
        return np.asarray(model.encode(batch, batch_size=32, normalize_embeddings=True))

    def bf16(batch: list[str]) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return st(batch)

    fbgemm = SentenceTransformerEmbedder("all-minilm-l6-v2", precision="fp32")._model
    torch.ao.quantization.quantize_dynamic(
        fbgemm, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
        inplace=True)

    def dynamic(batch: list[str]) -> np.ndarray:
        return np.asarray(fbgemm.encode(batch, batch_size=32, normalize_embeddings=True))

    label = f"ragtune ({ragtune.precision}, {ragtune.int8_kernel or 'fp32'} kernel, " \
        f"{ragtune.batch_size} a batch)"
    engines: dict[str, Callable[[list[str]], np.ndarray]] = {
        "sentence-transformers fp32": st, label: ragtune.embed,
        "torch dynamic int8 (fbgemm, 32 a batch)": dynamic, "bf16 autocast": bf16}
    result: dict = {"docs": len(texts), "tokens": tokens, "engines": {}}
    baseline = None
    print(f"{len(texts)} documents, {tokens} tokens, {len(qids)} queries")
    print("| engine | tokens/s | x baseline | dense nDCG@10 | vs fp32 |")
    print("|---|---|---|---|---|")
    for name, embed in engines.items():
        embed(texts[:64])  # warm up
        start = time.perf_counter()
        docs = embed(texts)
        seconds = time.perf_counter() - start
        scores = embed([queries[q] for q in qids]) @ docs.T
        ndcg = mean(ndcg_at_k([ids[i] for i in np.argsort(-row)[:10]], qrels[q], 10)
                    for q, row in zip(qids, scores, strict=True))
        rate = tokens / seconds
        baseline = baseline or (rate, ndcg)
        result["engines"][name] = {"seconds": seconds, "tokens_per_s": rate,
                                   "speedup": rate / baseline[0], "ndcg_at_10": ndcg}
        print(f"| {name} | {rate:,.0f} | {rate / baseline[0]:.2f}x | {ndcg:.4f} | "
              f"{ndcg - baseline[1]:+.4f} |", flush=True)
    write_result("embed_speed", result)


if __name__ == "__main__":
    main()
