"""Embedding speed on the SciFact corpus: ragtune's embedder against sentence-transformers
and ONNX Runtime.

Every corpus record (title and abstract, truncated at the model's 256 tokens as
sentence-transformers does) is embedded by each engine in one run, and the 300 test
queries with it; dense nDCG@10 comes from exact cosine search over the whole documents
(the setting of the model card's MTEB figure, 0.645). Tokens/s counts the tokens the model
reads (after truncation), the same count for every engine. Single-query latency is the p50
of embedding the 300 test queries one call each.

Engines: ``sentence-transformers fp32`` (the baseline: the model loaded with
``precision="fp32"``), ``ragtune`` (the default ``SentenceTransformerEmbedder``: int8 linear
layers where the CPU has int8 kernels, ragtune's native kernels on AVX-512 VNNI), ``ragtune,
native kernels off`` (the same with ``RAGTUNE_NATIVE_KERNELS=0``: torch's dynamic int8
layers, fbgemm, 32 texts a batch) and, with ``--onnx``, ``ONNX Runtime int8``: a model file
written by sentence-transformers' ``export_dynamic_quantized_onnx_model`` (e.g. its
``avx512_vnni`` configuration), run by ``onnxruntime`` as sentence-transformers'
``backend="onnx"`` runs it (32 texts a batch, sorted by length, mean pooling, L2 norm).

    python bench/embed_speed.py [--docs N] [--onnx path/to/model_qint8_avx512_vnni.onnx]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from statistics import mean

import numpy as np

from ragtune.evaluate.datasets import load_beir
from ragtune.evaluate.metrics import ndcg_at_k
from ragtune.models.embedders import SentenceTransformerEmbedder

from _common import data_dir, require, write_result


def onnx_engine(path: Path, tokenizer: object, max_length: int
                ) -> Callable[[list[str]], np.ndarray]:
    """``embed`` on an ONNX model file with ONNX Runtime, as sentence-transformers'
    ``backend="onnx"`` runs it: batches of 32 sorted by length, mean pooling, L2 norm."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}

    def embed(texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), 384), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), 32):
            rows = order[start:start + 32]
            features = tokenizer([texts[i] for i in rows], padding=True, truncation=True,  # type: ignore[operator]
                                 max_length=max_length, return_tensors="np")
            feed = {k: v.astype(np.int64) for k, v in features.items() if k in names}
            tokens = session.run(None, feed)[0]
            mask = features["attention_mask"][..., None].astype(np.float32)
            pooled = (tokens * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return embed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=0, help="first N records (0: all)")
    parser.add_argument("--onnx", type=Path, help="an int8 ONNX export of all-MiniLM-L6-v2")
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
    os.environ["RAGTUNE_NATIVE_KERNELS"] = "0"  # read when the layers are swapped
    torch_int8 = SentenceTransformerEmbedder("all-minilm-l6-v2")
    del os.environ["RAGTUNE_NATIVE_KERNELS"]  # the default's attention reads it per call

    def st(batch: list[str]) -> np.ndarray:
        return np.asarray(model.encode(batch, batch_size=32, normalize_embeddings=True))

    engines: dict[str, Callable[[list[str]], np.ndarray]] = {
        "sentence-transformers fp32": st,
        f"ragtune default ({ragtune.int8_kernel} int8, {ragtune.batch_size} a pass)":
            ragtune.embed,
        f"ragtune, native kernels off ({torch_int8.int8_kernel} int8, "
        f"{torch_int8.batch_size} a batch)": torch_int8.embed}
    if args.onnx:
        engines[f"ONNX Runtime int8 ({args.onnx.stem})"] = onnx_engine(
            args.onnx, model.tokenizer, model.max_seq_length)
    result: dict = {"docs": len(texts), "tokens": tokens, "engines": {}}
    baseline = None
    print(f"{len(texts)} documents, {tokens} tokens, {len(qids)} queries")
    print("| engine | tokens/s | x baseline | texts/s | query p50 ms | dense nDCG@10 | vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for name, embed in engines.items():
        embed(texts[:64])  # warm up
        start = time.perf_counter()
        docs = embed(texts)
        seconds = time.perf_counter() - start
        latencies = []
        for q in qids:
            start = time.perf_counter()
            embed([queries[q]])
            latencies.append(1e3 * (time.perf_counter() - start))
        scores = embed([queries[q] for q in qids]) @ docs.T
        ndcg = mean(ndcg_at_k([ids[i] for i in np.argsort(-row)[:10]], qrels[q], 10)
                    for q, row in zip(qids, scores, strict=True))
        rate, query_ms = tokens / seconds, float(np.percentile(latencies, 50))
        baseline = baseline or (rate, ndcg)
        result["engines"][name] = {"seconds": seconds, "tokens_per_s": rate,
                                   "texts_per_s": len(texts) / seconds,
                                   "query_p50_ms": query_ms,
                                   "speedup": rate / baseline[0], "ndcg_at_10": ndcg}
        print(f"| {name} | {rate:,.0f} | {rate / baseline[0]:.2f}x | "
              f"{len(texts) / seconds:.1f} | {query_ms:.1f} | {ndcg:.4f} | "
              f"{ndcg - baseline[1]:+.4f} |", flush=True)
    write_result("embed_speed", result)


if __name__ == "__main__":
    main()
