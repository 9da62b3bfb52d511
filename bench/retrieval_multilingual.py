"""Paragraph retrieval on XQuAD in English, in Chinese and across the two: recall@1 and @5.

XQuAD (Artetxe et al. 2020) has the same 240 paragraphs and 1,190 questions in both
languages. Each language's paragraphs are ingested as one JSONL file (one record per
paragraph, through ragtune's own ingest path), and each question must find its paragraph:

* ``en`` and ``zh``: questions over the paragraphs of their own language;
* ``zh→en``: the Chinese questions over the English paragraphs (a Chinese question about
  English filings), and ``en→zh`` the other way round.

Every embedder named is measured in the same run; the first is the baseline of the
ratios. The questions are split by article (even articles ``dev``, odd ``test``) so that a
choice made on one half can be checked on the other; the tables report all questions and
the test half.

    python bench/retrieval_multilingual.py [--embedders all-minilm-l6-v2,multilingual-e5-small]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from statistics import mean
from typing import Any

from ragtune import KnowledgeBase, Settings
from ragtune.config import EmbedderSettings

from _common import RESULTS, data_dir, require, write_result

MODES = ("lexical", "dense", "hybrid")
PAIRS = (("en", "en"), ("zh", "zh"), ("zh", "en"), ("en", "zh"))  # (questions, paragraphs)


def load(lang: str) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Paragraphs, and (question, paragraph index, article index) triples."""
    data = json.loads(require(data_dir() / "xquad" / f"xquad.{lang}.json").read_text())["data"]
    paragraphs: list[str] = []
    questions: list[tuple[str, int, int]] = []
    for article_no, article in enumerate(data):
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                questions.append((qa["question"], len(paragraphs), article_no))
            paragraphs.append(p["context"])
    return paragraphs, questions


def build(model: str, lang: str, paragraphs: list[str], rebuild: bool) -> KnowledgeBase:
    folder = RESULTS / f"xquad_{lang}_{model}"
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    corpus = folder / f"xquad.{lang}.jsonl"
    if not corpus.exists():
        folder.mkdir(parents=True, exist_ok=True)
        corpus.write_text("".join(json.dumps({"text": p}, ensure_ascii=False) + "\n"
                                  for p in paragraphs), encoding="utf-8")
    # the default model keeps its language ("en") so that Chinese paragraphs do not switch
    # it to the multilingual one: the baseline is ragtune as it was
    languages = "en" if model == EmbedderSettings.model else ""
    kb = KnowledgeBase.create(folder / "kb", Settings(
        embedder=EmbedderSettings(model=model, languages=languages)))
    t0 = time.perf_counter()
    report = kb.ingest([corpus])
    if report.chunks_embedded:
        print(f"  {model} {lang}: {report.chunks_total} chunks embedded in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return kb


def score(retriever: Any, questions: list[tuple[str, int, int]]) -> dict[str, dict[str, float]]:
    """recall@1, recall@5 and ms per query, over all questions and over each split."""
    found: list[tuple[bool, bool, str]] = []
    times = []
    for question, gold, article in questions:
        t = time.perf_counter()
        hits = retriever.retrieve(question, 50)
        times.append(time.perf_counter() - t)
        ranked = list(dict.fromkeys(h.chunk.record for h in hits))
        found.append((gold in ranked[:1], gold in ranked[:5], "dev" if article % 2 == 0
                      else "test"))
    out = {}
    for split in ("all", "dev", "test"):
        rows = [f for f in found if split in ("all", f[2])]
        out[split] = {"recall@1": mean(r[0] for r in rows), "recall@5": mean(r[1] for r in rows),
                      "questions": len(rows)}
    out["all"]["ms_per_query"] = 1e3 * mean(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedders", default="all-minilm-l6-v2,multilingual-e5-small",
                        help="comma-separated; the first is the baseline")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the knowledge bases")
    args = parser.parse_args()
    models = [m.strip() for m in args.embedders.split(",") if m.strip()]
    data = {lang: load(lang) for lang in ("en", "zh")}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for model in models:
        kbs = {lang: build(model, lang, data[lang][0], args.rebuild) for lang in ("en", "zh")}
        results[model] = {}
        for q_lang, p_lang in PAIRS:
            pair = q_lang if q_lang == p_lang else f"{q_lang}→{p_lang}"
            results[model][pair] = {mode: score(kbs[p_lang].retriever(mode), data[q_lang][1])
                                    for mode in MODES}
            print(f"  {model} {pair}: " + ", ".join(
                f"{m} {results[model][pair][m]['all']['recall@5']:.3f}" for m in MODES),
                flush=True)
        for kb in kbs.values():
            kb.close()
    report(models, results)
    path = write_result("retrieval_multilingual", {"results": results, "embedders": models})
    print(f"\nwritten: {path}")


def report(models: list[str], results: dict[str, dict[str, dict[str, Any]]]) -> None:
    base = models[0]
    pairs = list(results[base])
    for split in ("all", "test"):
        count = results[base][pairs[0]]["lexical"][split]["questions"]
        print(f"\nrecall@5, {split} questions ({count}); ratio to {base} in brackets\n")
        print("| embedder | mode | " + " | ".join(pairs) + " |")
        print("|---|---|" + "---|" * len(pairs))
        for model in models:
            for mode in MODES:
                cells = []
                for pair in pairs:
                    value = results[model][pair][mode][split]["recall@5"]
                    anchor = results[base][pair][mode][split]["recall@5"]
                    ratio = f" ({value / anchor:.2f}x)" if model != base and anchor else ""
                    cells.append(f"{value:.3f}{ratio}")
                print(f"| {model} | {mode} | " + " | ".join(cells) + " |")
    print("\nrecall@1, all questions\n")
    print("| embedder | mode | " + " | ".join(pairs) + " |")
    print("|---|---|" + "---|" * len(pairs))
    for model in models:
        for mode in MODES:
            print(f"| {model} | {mode} | " + " | ".join(
                f"{results[model][p][mode]['all']['recall@1']:.3f}" for p in pairs) + " |")


if __name__ == "__main__":
    main()
