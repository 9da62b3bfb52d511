"""Answer quality of ``ragtune ask`` on held-out SQuAD v1.1 articles (DRCD for Chinese):
the bundled grounded adapter against the raw model, on the same questions.

The knowledge base holds every paragraph of the held-out articles (those not in
``answer_adapters.TRAIN_ARTICLES``; for DRCD every second article by title), one file
each, default settings; each question is asked as ``ragtune ask`` asks it (hybrid
retrieval, k = 3, greedy). Per arm:

- EM and token F1 (SQuAD; characters for Chinese) of the answer without its ``[n]``
  markers; an abstention scores 0; paired bootstrap interval of the difference from
  ``raw`` (2,000 resamples);
- degenerate answers: the share of repeated word 4-grams above 0.2;
- answers with at least one ``[n]``; citation precision: the share of cited sources whose
  text holds a gold answer;
- false abstention on these answerable questions, and abstention on unanswerable ones:
  the first ``--unanswerable`` questions asked of a knowledge base of the other half of
  the held-out articles (without their own article);
- p50 and p95 seconds per answer.

    python bench/answer_quality.py [--questions 500] [--unanswerable 200]
        [--arms grounded,raw] [--adapter auto|RUN] [--dataset squad|drcd]
        [--chunk-tokens N] [--embedder NAME]

``--chunk-tokens`` and ``--embedder`` build the knowledge bases with another
``chunking.max_tokens`` or embedder, in folders of their own.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from answer_adapters import TRAIN_ARTICLES
from ragtune import KnowledgeBase, load_settings
from ragtune.evaluate.datasets import QAItem
from ragtune.evaluate.metrics import exact_match, normalize_answer, token_f1, tokens
from ragtune.evaluate.scoring import paired_bootstrap, percentile
from ragtune.models.components import build_generator, language_generator
from ragtune.rag.citations import strip_markers
from ragtune.rag.prompts import is_abstention

from _common import RESULTS, data_dir, machine, paragraph_kb, require, write_result


def held_out(dataset: str) -> tuple[list[tuple[str, list[QAItem], dict[str, str]]], str]:
    """The held-out articles as (title, questions, paragraphs), and the language."""
    if dataset == "squad":
        path, lang = data_dir() / "squad_v1.1" / "dev-v1.1.json", "en"
    else:
        path, lang = data_dir() / "drcd" / "DRCD_dev.json", "zh"
    data = json.loads(require(path).read_text(encoding="utf-8"))["data"]
    if dataset == "squad":
        chosen = [a for a in data if a["title"] not in TRAIN_ARTICLES]
    else:  # every second article by title: the others are left for training
        chosen = sorted(data, key=lambda a: a["title"])[1::2]
    out = []
    for a, article in enumerate(chosen):
        items, docs = [], {}
        for p, paragraph in enumerate(article["paragraphs"]):
            doc = f"a{a:03d}-{p:03d}" if dataset == "drcd" else f"{article['title']}-{p:03d}"
            docs[doc] = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(x["text"].strip() for x in qa["answers"]))
                items.append(QAItem(str(qa["id"]), qa["question"].strip(), answers,
                                    f"{doc}.txt", doc=doc))
        out.append((article["title"], items, docs))
    return out, lang


def repeat_share(text: str) -> float:
    """Share of the answer's word 4-grams that repeat an earlier one."""
    words = tokens(text)
    grams = [tuple(words[i:i + 4]) for i in range(len(words) - 3)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def record(item: QAItem, answer: Any) -> dict[str, Any]:
    text = strip_markers(answer.text)
    golds = [normalize_answer(a) for a in item.answers]
    cited = [any(g and g in normalize_answer(c.chunk.text) for g in golds)
             for c in answer.citations]
    return {
        "id": item.id, "question": item.question, "gold": list(item.answers),
        "answer": answer.text, "abstained": answer.abstained,
        "p_abstain": answer.abstain_probability, "similarity": answer.similarity,
        "em": 0.0 if answer.abstained else exact_match(text, item.answers),
        "f1": 0.0 if answer.abstained else token_f1(text, item.answers),
        "repeat": repeat_share(text),
        "marker": bool(re.search(r"\[\d+\]", answer.text)),
        "cited": len(cited), "cited_gold": sum(cited),
        # a gold answer is in the text the model was shown
        "shown_gold": any(g and g in normalize_answer(c.text) for g in golds
                          for c in answer.context),
        "unsupported": len(answer.unsupported),
        "seconds": answer.timings.get("total_ms", 0.0) / 1e3,
        "completion_tokens": answer.completion_tokens, "prompt_tokens": answer.prompt_tokens,
    }


def rescored(row: dict[str, Any]) -> dict[str, Any]:
    """A cached answer scored by today's rules: an answer that is the abstention in any
    form :func:`~ragtune.rag.prompts.is_abstention` now recognises (資料中没有提到。 since
    2026-12-07) is an abstention, as ``ask`` now returns it, with nothing cited."""
    if row["abstained"] or not is_abstention(row["answer"]):
        return row
    return {**row, "abstained": True, "em": 0.0, "f1": 0.0, "marker": False, "cited": 0,
            "cited_gold": 0}


def run_arm(kb: KnowledgeBase, generator: Any, items: list[QAItem], path: Path,
            label: str) -> list[dict[str, Any]]:
    """Answers of one arm, cached line by line in ``path`` (a rerun continues)."""
    done = {}
    if path.exists():
        done = {r["id"]: rescored(r) for r in map(json.loads, path.read_text().splitlines())}
    with path.open("a", encoding="utf-8") as out:
        for i, item in enumerate(items, 1):
            if item.id not in done:
                done[item.id] = record(item, kb.ask(item.question, generator=generator))
                out.write(json.dumps(done[item.id], ensure_ascii=False) + "\n")
                out.flush()
            print(f"\r{label}: {i}/{len(items)}", end="", flush=True)
    print()
    return [done[i.id] for i in items]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in rows if not r["abstained"]]
    cited = sum(r["cited"] for r in rows)
    seconds = [r["seconds"] for r in rows]
    return {
        "questions": len(rows),
        "em": sum(r["em"] for r in rows) / len(rows),
        "f1": sum(r["f1"] for r in rows) / len(rows),
        "degenerate": sum(r["repeat"] > 0.2 for r in rows),
        "with_marker": sum(r["marker"] for r in answered) / max(1, len(answered)),
        "with_marker_all": sum(r["marker"] for r in rows) / len(rows),
        "citation_precision": sum(r["cited_gold"] for r in rows) / cited if cited else None,
        "abstained": sum(r["abstained"] for r in rows) / len(rows),
        "p50_s": percentile(seconds, 50), "p95_s": percentile(seconds, 95),
        "completion_tokens_p50": percentile([r["completion_tokens"] for r in rows], 50),
        "prompt_tokens_p50": percentile([r["prompt_tokens"] for r in rows], 50),
    }


def cpu_flags() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("Model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("Flags")), [])
    wide = [f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")]
    return f"{model}; {' '.join(wide)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("squad", "drcd"), default="squad")
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--limit", type=int, default=0,
                        help="Answer only the first N of the sampled questions (the same "
                             "ones as a full run: learning curves).")
    parser.add_argument("--unanswerable", type=int, default=200)
    parser.add_argument("--raw-questions", type=int, default=0,
                        help="Answer only the first N questions with the raw arm (its long "
                             "answers are slow); the interval is over those pairs. 0: all.")
    parser.add_argument("--raw-unanswerable", type=int, default=-1,
                        help="Unanswerable questions for the raw arm (-1: --unanswerable).")
    parser.add_argument("--arms", default="grounded,raw", help="Of grounded, raw, one-model.")
    parser.add_argument("--adapter", default="auto",
                        help="The grounded arm's adapter: auto (the bundled one) or a run.")
    parser.add_argument("--model", default=None, help="Generator model (default: settings).")
    parser.add_argument("--one-answer", action="store_true",
                        help="Read an --adapter folder's answers as a bundled grounded "
                             "adapter's are read, up to the first [n] (a checkpoint of "
                             "answer_adapters.py, for a learning curve).")
    parser.add_argument("--name", default="", help="Results subfolder (default: dataset).")
    parser.add_argument("--no-repeat", type=int, default=None,
                        help="generator.no_repeat for both arms (0: the raw decoding).")
    parser.add_argument("--chunk-tokens", type=int, default=0,
                        help="chunking.max_tokens of the knowledge bases (0: the default).")
    parser.add_argument("--embedder", default="",
                        help="Embedder of the knowledge bases (default: settings).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    articles, lang = held_out(args.dataset)
    work = RESULTS / "answer-quality" / args.dataset
    items = [i for _, its, _ in articles for i in its]
    docs = {d: t for _, _, ds in articles for d, t in ds.items()}
    questions = random.Random(args.seed).sample(items, min(args.questions, len(items)))
    questions = questions[:args.limit or len(questions)]
    print(f"{len(articles)} held-out articles, {len(docs)} paragraphs, "
          f"{len(questions)} questions; CPU: {cpu_flags()}")
    settings = load_settings()
    if args.chunk_tokens:
        settings = replace(settings, chunking=replace(settings.chunking,
                                                      max_tokens=args.chunk_tokens))
    if args.embedder:
        settings = replace(settings, embedder=replace(settings.embedder, model=args.embedder))
    # knowledge bases of other settings in folders of their own
    tag = "".join(f"-{t}" for t in (args.chunk_tokens and f"c{args.chunk_tokens}",
                                     args.embedder) if t)
    kb = paragraph_kb(work / f"full{tag}", docs, settings)
    gen = settings.generator if args.model is None else replace(settings.generator,
                                                                model=args.model)
    if args.no_repeat is not None:
        gen = replace(gen, no_repeat=args.no_repeat)
    # grounded: what `ragtune ask` answers this language with (for Chinese, the bundled
    # model whose grounded adapter is Chinese); raw: that model without its adapter;
    # one-model: generator.by_language off (the configured model and its adapter for all)
    grounded = replace(gen, adapter=args.adapter)
    grounded = language_generator(grounded, lang) or grounded
    arms = {"grounded": grounded, "raw": replace(grounded, adapter="none"),
            "one-model": replace(gen, adapter=args.adapter, by_language="off")}
    out = work / (args.name or "run")
    out.mkdir(parents=True, exist_ok=True)
    # halves of the held-out articles: a question is unanswerable in the other half's base
    halves = [{d: t for _, _, ds in articles[h::2] for d, t in ds.items()} for h in (0, 1)]
    half_of = {i.id: h for h in (0, 1) for _, its, _ in articles[h::2] for i in its}
    rows: dict[str, list[dict[str, Any]]] = {}
    results: dict[str, Any] = {}
    for arm in args.arms.split(","):
        generator = build_generator(arms[arm])
        if args.one_answer and arm != "raw":
            generator.one_answer = True  # type: ignore[attr-defined]
        mine = questions
        unanswerable = questions[:args.unanswerable]
        if arm == "raw":
            mine = questions[:args.raw_questions or len(questions)]
            if args.raw_unanswerable >= 0:
                unanswerable = questions[:args.raw_unanswerable]
        t = time.perf_counter()
        rows[arm] = run_arm(kb, generator, mine, out / f"{arm}.jsonl", arm)
        results[arm] = summary(rows[arm]) | {"adapter": getattr(generator, "adapter_name",
                                                                None),
                                             "seconds": time.perf_counter() - t}
        if unanswerable:
            declined = []
            for h in (0, 1):
                other = paragraph_kb(work / f"half-{1 - h}{tag}", halves[1 - h], settings)
                asked = [i for i in unanswerable if half_of[i.id] == h]
                declined += [r["abstained"] for r in run_arm(
                    other, generator, asked, out / f"{arm}-unanswerable-{h}.jsonl",
                    f"{arm} unanswerable {h + 1}/2")]
                other.close()
            results[arm]["abstain_unanswerable"] = sum(declined) / len(declined)
            results[arm]["unanswerable_questions"] = len(declined)
        del generator
    if "raw" in rows:
        raw = {r["id"]: r for r in rows["raw"]}
        for arm in rows:
            if arm != "raw":
                pairs = [(r, raw[r["id"]]) for r in rows[arm] if r["id"] in raw]
                for metric in ("em", "f1"):
                    results[arm][f"{metric}_vs_raw"] = paired_bootstrap(
                        [a[metric] for a, _ in pairs], [b[metric] for _, b in pairs])
                    results[arm][f"{metric}_on_raw_questions"] = (
                        sum(a[metric] for a, _ in pairs) / max(1, len(pairs)))
    print(f"\n| arm | EM | F1 | degenerate | with [n] | citation precision | abstain "
          f"(unanswerable) | false abstain | p50 s | p95 s |\n|{'---|' * 10}")
    for arm, s in results.items():
        vs = s.get("f1_vs_raw")
        interval = f" ({vs['diff']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}])" if vs else ""
        prec = "–" if s["citation_precision"] is None else f"{s['citation_precision']:.3f}"
        unans = s.get("abstain_unanswerable")
        print(f"| {arm} | {s['em']:.3f} | {s['f1']:.3f}{interval} | {s['degenerate']} of "
              f"{s['questions']} | {s['with_marker']:.1%} | {prec} | "
              f"{'–' if unans is None else f'{unans:.1%}'} | {s['abstained']:.1%} | "
              f"{s['p50_s']:.2f} | {s['p95_s']:.2f} |")
    path = write_result(f"answer_quality_{args.dataset}{'_' + args.name if args.name else ''}",
                        {"machine": machine(), "cpu": cpu_flags(), "dataset": args.dataset,
                         "language": lang, "questions": len(questions),
                         "adapter": args.adapter, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
