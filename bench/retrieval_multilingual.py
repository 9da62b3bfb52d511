"""Paragraph retrieval on XQuAD in English and Chinese: recall@1 and @5 per mode.

XQuAD (Artetxe et al. 2020) has the same 240 paragraphs and 1,190 questions in both
languages. Each language's paragraphs are ingested as one JSONL file (one record per
paragraph, through ragtune's own ingest path), and each question must find its paragraph.
The bundled embedder is English-only; the hybrid default gives the dense list no weight for
a query in a language the embedder was not trained on.

    python bench/retrieval_multilingual.py
"""

from __future__ import annotations

import json
import shutil
import time
from statistics import mean

from ragtune import KnowledgeBase

from _common import RESULTS, data_dir, require, write_result


def load(lang: str) -> tuple[list[str], list[tuple[str, int]]]:
    data = json.loads(require(data_dir() / "xquad" / f"xquad.{lang}.json").read_text())["data"]
    paragraphs, questions = [], []
    for article in data:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                questions.append((qa["question"], len(paragraphs)))
            paragraphs.append(p["context"])
    return paragraphs, questions


def main() -> None:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for lang in ("en", "zh"):
        paragraphs, questions = load(lang)
        folder = RESULTS / f"xquad_{lang}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        corpus = folder / f"xquad.{lang}.jsonl"
        corpus.write_text("".join(json.dumps({"text": p}, ensure_ascii=False) + "\n"
                                  for p in paragraphs), encoding="utf-8")
        kb = KnowledgeBase.create(folder / "kb")
        report = kb.ingest([corpus])
        results[lang] = {}
        for mode in ("lexical", "dense", "hybrid"):
            retriever = kb.retriever(mode)
            r1, r5, times = [], [], []
            for question, gold in questions:
                t = time.perf_counter()
                hits = retriever.retrieve(question, 50)
                times.append(time.perf_counter() - t)
                ranked = list(dict.fromkeys(h.chunk.record for h in hits))
                r1.append(gold in ranked[:1])
                r5.append(gold in ranked[:5])
            results[lang][mode] = {"recall@1": mean(r1), "recall@5": mean(r5),
                                   "ms_per_query": 1e3 * mean(times)}
        print(f"{lang}: {len(paragraphs)} paragraphs, {len(questions)} questions, "
              f"{report.chunks_total} chunks", flush=True)

    print("\n| mode | en recall@1 | en recall@5 | zh recall@1 | zh recall@5 | zh − en @5 |")
    print("|---|---|---|---|---|---|")
    for mode in ("lexical", "dense", "hybrid"):
        en, zh = results["en"][mode], results["zh"][mode]
        print(f"| {mode} | {en['recall@1']:.3f} | {en['recall@5']:.3f} | {zh['recall@1']:.3f} | "
              f"{zh['recall@5']:.3f} | {100 * (zh['recall@5'] - en['recall@5']):+.1f} pts |")
    path = write_result("retrieval_multilingual", {"results": results})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
