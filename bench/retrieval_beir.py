"""Retrieval quality on SciFact (BEIR): nDCG@10 and recall@100 for lexical, dense, hybrid.

The corpus is ingested through ragtune's own path (``KnowledgeBase.ingest`` on
``corpus.jsonl``: one document per record, title as context, chunked by embedder tokens);
chunk hits are mapped back to corpus ids, keeping each document's best-ranked chunk.
The published anchors from the datasets README are printed beside each figure, with the
ratio ours / anchor.

    python bench/retrieval_beir.py [--split test] [--rebuild]
        [--embedders all-minilm-l6-v2,multilingual-e5-small] [--sample-docs 1000]
        [--chunk-tokens 100]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from statistics import mean
from typing import Any

from ragtune import KnowledgeBase, Settings
from ragtune.config import ChunkSettings, EmbedderSettings
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
    parser.add_argument("--embedders", default=EmbedderSettings.model,
                        help="comma-separated embedders, each measured on the same queries; "
                             "the first is the baseline of the ratios")
    parser.add_argument("--sample-docs", type=int, default=0,
                        help="index only the split's relevant documents plus random others, "
                             "this many in all (0: the whole corpus)")
    parser.add_argument("--chunk-tokens", type=int, default=0,
                        help="chunking.max_tokens of the knowledge bases (0: the default)")
    args = parser.parse_args()

    folder = require(data_dir() / args.dataset)
    corpus, queries, qrels = load_beir(folder, args.split)
    source = folder / "corpus.jsonl"
    if args.sample_docs:
        corpus, source = sample_corpus(corpus, qrels, args.sample_docs,
                                       RESULTS / f"{args.dataset}-{args.sample_docs}.jsonl")
    models = [m.strip() for m in args.embedders.split(",") if m.strip()]
    runs = {model: run(model, args, source, corpus, queries, qrels) for model in models}
    for model, (results, report, _) in runs.items():
        print(f"\n{args.dataset} {args.split}, {model} ({len(qrels)} queries, {len(corpus)} "
              f"documents, {report.chunks_total} chunks)\n")
        print("| mode | nDCG@10 | recall@100 | anchor | anchor nDCG@10 | ratio | ms/query |")
        print("|---|---|---|---|---|---|---|")
        for mode, r in results.items():
            name, anchor, anchor_recall = ANCHORS[mode]
            recall = f"{r['recall@100']:.3f}" + (f" (anchor {anchor_recall})"
                                                 if anchor_recall else "")
            print(f"| {mode} | {r['ndcg@10']:.3f} | {recall} | {name} | {anchor:.3f} | "
                  f"{r['ndcg@10'] / anchor:.3f} | {r['ms_per_query']:.1f} |")
    if len(models) > 1:
        base = runs[models[0]][0]
        print(f"\nnDCG@10 by embedder, ratio to {models[0]} in brackets\n")
        print("| embedder | " + " | ".join(base) + " | ingest s |")
        print("|---|" + "---|" * (len(base) + 1))
        for model, (results, _, seconds) in runs.items():
            print(f"| {model} | " + " | ".join(
                f"{results[m]['ndcg@10']:.3f} ({results[m]['ndcg@10'] / base[m]['ndcg@10']:.2f}x)"
                for m in base) + f" | {seconds:.0f} |")
    name = f"retrieval_beir_{args.dataset}_{args.split}" + (
        f"_{args.sample_docs}docs" if args.sample_docs else "") + (
        f"_c{args.chunk_tokens}" if args.chunk_tokens else "")
    path = write_result(name, {
        "embedders": {model: {"results": r, "ingest_seconds": s, "chunks": rep.chunks_total}
                      for model, (r, rep, s) in runs.items()},
        "results": runs[models[0]][0], "documents": len(corpus),
        "anchors": {m: {"name": a[0], "ndcg@10": a[1], "recall@100": a[2]}
                    for m, a in ANCHORS.items()},
    })
    print(f"\nwritten: {path}")


def sample_corpus(corpus: list[dict[str, Any]], qrels: dict[str, dict[str, int]], size: int,
                  path: Path) -> tuple[list[dict[str, Any]], Path]:
    """Every document the queries need, then random others (seed 0) up to ``size``,
    written in corpus order as a JSONL file."""
    import json
    import random

    needed = {d for rel in qrels.values() for d in rel}
    others = [r["_id"] for r in corpus if r["_id"] not in needed]
    keep = needed | set(random.Random(0).sample(others, max(0, min(len(others),
                                                                   size - len(needed)))))
    sample = [r for r in corpus if r["_id"] in keep]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample),
                    encoding="utf-8")
    return sample, path


def run(model: str, args: argparse.Namespace, source: Path, corpus: list[dict[str, Any]],
        queries: dict[str, str], qrels: dict[str, dict[str, int]],
        ) -> tuple[dict[str, dict[str, float]], Any, float]:
    """One embedder's knowledge base (built once) and its scores in every mode."""
    suffix = "" if model == EmbedderSettings.model else f"-{model}"
    sample = f"-{args.sample_docs}" if args.sample_docs else ""
    chunks = f"-c{args.chunk_tokens}" if args.chunk_tokens else ""
    kb_path = RESULTS / f"{args.dataset}{sample}-kb{suffix}{chunks}"
    if args.rebuild and kb_path.exists():
        import shutil

        shutil.rmtree(kb_path)
    # the default model keeps its language: the baseline is ragtune as it was
    languages = "en" if model == EmbedderSettings.model else ""
    chunking = ChunkSettings(max_tokens=args.chunk_tokens) if args.chunk_tokens else \
        ChunkSettings()
    kb = KnowledgeBase.create(kb_path, Settings(embedder=EmbedderSettings(
        model=model, languages=languages), chunking=chunking))
    t0 = time.perf_counter()
    report = kb.ingest([source])
    ingest_s = time.perf_counter() - t0
    print(f"ingest ({model}): {report.summary()}", flush=True)
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
    kb.close()
    return results, report, ingest_s


if __name__ == "__main__":
    main()
