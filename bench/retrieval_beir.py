"""Retrieval quality on SciFact (BEIR): nDCG@10 and recall@100 for lexical, dense, hybrid.

The corpus is ingested through ragtune's own path (``KnowledgeBase.ingest`` on
``corpus.jsonl``: one document per record, title as context, chunked by embedder tokens);
chunk hits are mapped back to corpus ids, keeping each document's best-ranked chunk.
The published anchors from the datasets README are printed beside each figure, with the
ratio ours / anchor.

    python bench/retrieval_beir.py [--split test] [--rebuild]
"""

from __future__ import annotations

import argparse
import time
from statistics import mean

from ragtune import KnowledgeBase
from ragtune.evaluate.datasets import load_beir
from ragtune.evaluate.metrics import ndcg_at_k, recall_at_k

from _common import RESULTS, data_dir, require, write_result

ANCHORS = {  # SciFact test, nDCG@10 (recall@100 where published)
    "lexical": ("BM25 (Anserini), BEIR Table 2", 0.665, 0.908),
    "dense": ("all-MiniLM-L6-v2, model card (MTEB)", 0.645, None),
    "hybrid": ("BM25 + cross-encoder rerank, BEIR Table 2", 0.688, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--split", default="test", choices=["test", "train"])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the knowledge base")
    parser.add_argument("--depth", type=int, default=300, help="chunks retrieved per query")
    args = parser.parse_args()

    folder = require(data_dir() / args.dataset)
    corpus, queries, qrels = load_beir(folder, args.split)
    kb_path = RESULTS / f"{args.dataset}-kb"
    if args.rebuild and kb_path.exists():
        import shutil

        shutil.rmtree(kb_path)
    kb = KnowledgeBase.create(kb_path)
    t0 = time.perf_counter()
    report = kb.ingest([folder / "corpus.jsonl"])
    ingest_s = time.perf_counter() - t0
    print(f"ingest: {report.summary()}")
    doc_ids = [r["_id"] for r in corpus]

    results = {}
    for mode in ("lexical", "dense", "hybrid"):
        retriever = kb.retriever(mode)
        ndcgs, recalls, times = [], [], []
        for qid, rel in qrels.items():
            t = time.perf_counter()
            hits = retriever.retrieve(queries[qid], args.depth)
            times.append(time.perf_counter() - t)
            ranked = list(dict.fromkeys(doc_ids[h.chunk.record] for h in hits))
            ndcgs.append(ndcg_at_k(ranked, rel, 10))
            recalls.append(recall_at_k(ranked, rel, 100))
        results[mode] = {"ndcg@10": mean(ndcgs), "recall@100": mean(recalls),
                         "ms_per_query": 1e3 * mean(times), "queries": len(ndcgs)}

    print(f"\nSciFact {args.split} ({len(qrels)} queries, {len(corpus)} documents, "
          f"{report.chunks_total} chunks)\n")
    print("| mode | nDCG@10 | recall@100 | anchor | anchor nDCG@10 | ratio | ms/query |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in results.items():
        name, anchor, anchor_recall = ANCHORS[mode]
        recall = f"{r['recall@100']:.3f}" + (f" (anchor {anchor_recall})" if anchor_recall else "")
        print(f"| {mode} | {r['ndcg@10']:.3f} | {recall} | {name} | {anchor:.3f} | "
              f"{r['ndcg@10'] / anchor:.3f} | {r['ms_per_query']:.1f} |")
    path = write_result(f"retrieval_beir_{args.dataset}_{args.split}", {
        "results": results, "anchors": {m: {"name": a[0], "ndcg@10": a[1], "recall@100": a[2]}
                                        for m, a in ANCHORS.items()},
        "ingest_seconds": ingest_s, "chunks": report.chunks_total,
        "settings": kb.settings.to_dict(),
    })
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
