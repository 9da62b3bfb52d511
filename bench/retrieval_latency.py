"""Search latency at 100,000 chunks on these cores: hybrid k=10, one query at a time and with
4 concurrent threads, next to LanceDB flat search without an index and rank_bm25 (the
LangChain BM25 backend), measured in the same run on the same chunks.

Query embedding is timed separately (it is the same for every method). The chunks are real
SciFact (and SQuAD) chunks with their real embeddings, padded to 100,000 with perturbed
copies (see ``bench/_latency_data.py``); the queries are the 300 SciFact test claims.

    python bench/retrieval_latency.py [--size 100000]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ragtune import KnowledgeBase, Settings
from ragtune.config import RetrievalSettings
from ragtune.evaluate.datasets import load_beir
from ragtune.index.tokenize import tokenize

from _common import RESULTS, data_dir, require, write_result
from _latency_data import build


def percentiles(ms: list[float]) -> dict[str, float]:
    return {f"p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--baseline-queries", type=int, default=50)
    args = parser.parse_args()
    _, queries, qrels = load_beir(require(data_dir() / "scifact"), "test")
    texts = [queries[q] for q in qrels]
    kb_path = RESULTS / f"latency-kb-{args.size}"
    build(kb_path, [RESULTS / "scifact-kb", RESULTS / "sync-kb"], args.size)

    kb = KnowledgeBase.open(kb_path)
    start = time.perf_counter()
    reader = kb.reader
    open_s = time.perf_counter() - start
    embed_ms = timed(lambda t: kb.embedder.embed([t]), texts)
    vectors = {t: kb.embedder.embed([t])[0] for t in texts}
    # the retrievers, with the query embedding already done (it is reported separately)
    hybrid = kb.retriever("hybrid")
    hybrid.dense.embedder = _Precomputed(vectors)  # type: ignore[attr-defined]
    for t in texts[:20]:  # warm-up
        hybrid.retrieve(t, 10)
    hybrid_ms = timed(lambda t: hybrid.retrieve(t, 10), texts)
    dense_ms = timed(lambda t: reader.search(vectors[t], 300), texts)
    lexical_ms = timed(lambda t: kb.lexical.search(t, 300), texts)

    def run_parallel(threads: int) -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda t: hybrid.retrieve(t, 10), texts * 2))
        return 2 * len(texts) / (time.perf_counter() - start)

    qps_1, qps_4 = run_parallel(1), run_parallel(4)

    # approximate search against exact search over the same vectors
    exact = KnowledgeBase.open(kb_path, Settings(retrieval=RetrievalSettings(
        ann_min_rows=10 ** 9))).reader
    recall = np.mean([len({i for i, _ in reader.search(vectors[t], 10)}
                          & {i for i, _ in exact.search(vectors[t], 10)}) / 10 for t in texts])

    # baselines, same chunks, same queries
    baseline_queries = texts[: args.baseline_queries]
    store = kb.store
    lance_ms = timed(lambda t: store.search(vectors[t], 10), baseline_queries)
    from rank_bm25 import BM25Okapi

    chunks = list(store.scan())
    start = time.perf_counter()
    okapi = BM25Okapi([tokenize(c.index_text) for c in chunks])
    okapi_build_s = time.perf_counter() - start
    okapi_ms = timed(lambda t: okapi.get_top_n(tokenize(t), chunks, n=10), baseline_queries)

    rows = {
        "hybrid search, k=10 (ragtune)": percentiles(hybrid_ms),
        "  of which dense top-300": percentiles(dense_ms),
        "  of which BM25 top-300": percentiles(lexical_ms),
        "query embedding (reported apart)": percentiles(embed_ms),
        "LanceDB flat search, k=10 (no index)": percentiles(lance_ms),
        "rank_bm25 BM25Okapi top-10": percentiles(okapi_ms),
    }
    print(f"\n{store.count()} chunks; dense: {'HNSW' if reader.approximate else 'exact'}; "
          f"view loaded in {open_s:.2f} s\n")
    print("| what | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, p in rows.items():
        print(f"| {name} | {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} |")
    ours = rows["hybrid search, k=10 (ragtune)"]["p50"]
    print(f"\nhybrid queries/s: {qps_1:.0f} with 1 thread, {qps_4:.0f} with 4 threads")
    print(f"approximate recall@10 against exact search: {recall:.4f}")
    print(f"p50 ratios: LanceDB flat / ragtune hybrid = "
          f"{rows['LanceDB flat search, k=10 (no index)']['p50'] / ours:.0f}x, "
          f"rank_bm25 / ragtune hybrid = {rows['rank_bm25 BM25Okapi top-10']['p50'] / ours:.0f}x "
          f"(rank_bm25 index build {okapi_build_s:.1f} s)")
    path = write_result(f"retrieval_latency_{args.size}", {
        "chunks": store.count(), "approximate": reader.approximate, "latency_ms": rows,
        "qps": {"1": qps_1, "4": qps_4}, "recall@10_vs_exact": recall, "view_load_s": open_s,
    })
    print(f"written: {path}")


class _Precomputed:
    """Stands in for the embedder so that only the search is timed."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.languages = ("en",)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


if __name__ == "__main__":
    main()
