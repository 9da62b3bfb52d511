"""Choose retrieval defaults on SciFact *train* queries only (the test split is never read).

Computes each train query's dense and lexical chunk rankings once, then scores fusion
settings (RRF constant and list weights, min-max and best-score scaling) and BM25
parameters by document-level nDCG@10; then runs the product's zscore fusion for a range of
dense weights, and prints the grid best-first. The chosen defaults are then
measured once on test by ``bench/retrieval_beir.py``.

    python bench/tune_retrieval.py [--kb bench/results/scifact-kb]
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from statistics import mean

from ragtune import KnowledgeBase
from ragtune.evaluate.datasets import load_beir
from ragtune.evaluate.metrics import ndcg_at_k
from ragtune.index.bm25 import BM25Index
from ragtune.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion

from _common import RESULTS, data_dir, require


def doc_ranking(chunk_ids, record_of, doc_ids):
    return list(dict.fromkeys(doc_ids[record_of[c]] for c in chunk_ids))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", default=str(RESULTS / "scifact-kb"),
                        help="a knowledge base of the SciFact corpus (retrieval_beir.py builds "
                             "one); chunking is whatever it was built with")
    parser.add_argument("--depth", type=int, default=300)
    args = parser.parse_args()
    folder = require(data_dir() / "scifact")
    corpus, queries, qrels = load_beir(folder, "train")
    doc_ids = [r["_id"] for r in corpus]
    kb = KnowledgeBase.open(args.kb)
    chunks = list(kb.store.scan())
    record_of = {c.id: c.record for c in chunks}
    dense_retriever = kb.retriever("dense")
    dense = {}
    for qid in qrels:
        dense[qid] = [(h.chunk.id, h.score) for h in dense_retriever.retrieve(queries[qid],
                                                                             args.depth)]
    print(f"{len(qrels)} train queries, {len(chunks)} chunks")

    def score(fused_by_query):
        return mean(ndcg_at_k(doc_ranking([c for c, _ in fused_by_query[q]], record_of, doc_ids),
                              qrels[q], 10) for q in qrels)

    results = []
    for k1, b in itertools.product((0.9, 1.2, 1.5), (0.4, 0.6, 0.75)):
        index = BM25Index.build([c.id for c in chunks], [c.index_text for c in chunks], k1, b)
        lexical = {q: index.search(queries[q], args.depth) for q in qrels}
        results.append((score(lexical), f"lexical k1={k1} b={b}"))
        for rrf_k, w in itertools.product((10, 30, 60, 100), (0.3, 0.4, 0.5, 0.6, 0.7)):
            fused = {q: reciprocal_rank_fusion(
                [[c for c, _ in dense[q]], [c for c, _ in lexical[q]]], k=rrf_k,
                weights=[w, 1 - w]) for q in qrels}
            results.append((score(fused), f"rrf k={rrf_k} dense_w={w} | bm25 k1={k1} b={b}"))
        for alpha, norm in itertools.product((0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7),
                                             ("minmax", "max")):
            fused = {q: weighted_fusion([dense[q], lexical[q]], [alpha, 1 - alpha], norm)
                     for q in qrels}
            name = "score" if norm == "max" else "minmax"
            results.append((score(fused), f"{name} dense_w={alpha} | bm25 k1={k1} b={b}"))
        print(f"bm25 k1={k1} b={b}: best so far {max(results)[0]:.4f} {max(results)[1]}",
              flush=True)
    for w in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8):
        # the product's own zscore fusion (it scores every candidate with both retrievers)
        kb.settings = replace(kb.settings, retrieval=replace(kb.settings.retrieval,
                                                             fusion="zscore", dense_weight=w))
        hybrid = kb.retriever("hybrid")
        fused = {q: hybrid.rank(queries[q], args.depth)[0] for q in qrels}
        results.append((score(fused), f"zscore dense_w={w} | bm25 k1=0.9 b=0.4"))
        print(f"{results[-1][1]}: {results[-1][0]:.4f}", flush=True)
    results.append((score(dense), "dense"))
    results.sort(reverse=True)
    print("\nbest on train (nDCG@10):")
    for value, name in results[:15]:
        print(f"  {value:.4f}  {name}")
    for name in ("rrf k=60 dense_w=0.5 | bm25 k1=0.9 b=0.4",
                 "score dense_w=0.5 | bm25 k1=0.9 b=0.4",
                 "zscore dense_w=0.75 | bm25 k1=0.9 b=0.4"):
        print(f"  {next(v for v, n in results if n == name):.4f}  {name}")


if __name__ == "__main__":
    main()
