"""Retrieval quality of a knowledge base on labelled queries: recall@k, MRR, nDCG@10.

Queries come from a BEIR folder (qrels name corpus ids; the knowledge base must have been
built from that folder's ``corpus.jsonl``, whose records map chunk hits back to ids) or a
QA dataset whose questions name their gold ``source`` or ``chunk_ids``. Chunk hits are
folded to documents, each document at its best rank.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from statistics import mean
from typing import Any

from ragtune.errors import DataError
from ragtune.evaluate.datasets import QAItem, load_beir, load_qa
from ragtune.evaluate.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from ragtune.evaluate.scoring import gold_match
from ragtune.types import Hit

__all__ = ["evaluate_retrieval"]

_Query = tuple[str, str, dict[str, int], Callable[[Hit], str]]


def _beir_queries(folder: Path, split: str) -> list[_Query]:
    corpus, queries, qrels = load_beir(folder, split)
    ids = [str(r["_id"]) for r in corpus]

    def key(hit: Hit) -> str:
        c = hit.chunk
        if c.record is not None and Path(c.source).name == "corpus.jsonl" and c.record < len(ids):
            return ids[c.record]
        return c.source

    return [(qid, queries[qid], rel, key) for qid, rel in qrels.items() if qid in queries]


def _gold_key(item: QAItem) -> Callable[[Hit], str]:
    """Ranks by gold-ness when only the source is known: every gold chunk is one item."""
    def key(h: Hit) -> str:
        if gold_match(item, h.chunk.id, h.chunk.source):
            return "<gold>"
        return f"{h.chunk.source}#{h.chunk.record}"
    return key


def _qa_queries(path: Path) -> list[_Query]:
    out: list[_Query] = []
    for item in load_qa(path).items:
        if item.chunk_ids:
            out.append((item.id, item.question, dict.fromkeys(item.chunk_ids, 1),
                        lambda h: h.chunk.id))
        elif item.source:
            out.append((item.id, item.question, {"<gold>": 1}, _gold_key(item)))
    if not out:
        raise DataError(f"{path}: no question names its 'source' or 'chunk_ids', so "
                        "retrieval cannot be scored")
    return out


def evaluate_retrieval(kb: Any, dataset: str | Path, *, split: str = "test", k: int = 10,
                       depth: int = 100, mode: str | None = None, limit: int | None = None,
                       ) -> dict[str, Any]:
    """Per-query and mean recall@k, recall@depth, MRR@k and nDCG@10."""
    path = Path(dataset)
    queries = _beir_queries(path, split) if path.is_dir() else _qa_queries(path)
    queries = queries[:limit] if limit else queries
    rows: list[dict[str, Any]] = []
    for qid, text, relevance, key in queries:
        hits = kb.search(text, k=depth, mode=mode)
        ranked = list(dict.fromkeys(key(h) for h in hits))
        rows.append({"id": qid, "query": text,
                     f"recall@{k}": recall_at_k(ranked, relevance, k),
                     f"recall@{depth}": recall_at_k(ranked, relevance, depth),
                     f"mrr@{k}": mrr_at_k(ranked, relevance, k),
                     "ndcg@10": ndcg_at_k(ranked, relevance, 10)})
    names = [f"recall@{k}", f"recall@{depth}", f"mrr@{k}", "ndcg@10"]
    return {"dataset": str(path), "queries": len(rows), "mode": mode or
            kb.settings.retrieval.mode,
            "mean": {n: mean(float(r[n]) for r in rows) for n in names}, "per_query": rows}
