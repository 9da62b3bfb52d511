"""Shorter prompts against answer quality: how F1, EM, citation precision, prompt tokens
and seconds per answer move with the number of sources shown (``retrieval.k``), the chunk
size (``chunking.max_tokens``) and the sentences kept of each chunk
(``retrieval.sentences``, :mod:`ragtune.rag.compress`).

Asked on the validation split of ``answer_calibration.py`` (questions of the training
articles that the bundled adapter was not trained on, over a knowledge base of every
paragraph of those articles), never on the held-out articles: the default is chosen from
this curve and then checked once on the held-out ones with ``answer_quality.py``. Every
other setting is the default, the bundled adapter and its abstention included. Each point
answers the same questions with one generator, in this one run.

    python bench/context_curve.py [--questions 200] [--points k3,k1,...] [--examples 1200]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from answer_calibration import validation_questions
from answer_quality import cpu_flags, run_arm, summary
from ragtune import load_settings
from ragtune.models.components import build_generator

from _common import RESULTS, paragraph_kb, write_result

# name: (k, chunking.max_tokens, sentences)
POINTS = {
    "k3": (3, 200, 0), "k1": (1, 200, 0), "k2": (2, 200, 0), "k4": (4, 200, 0),
    "k5": (5, 200, 0), "k3-s1": (3, 200, 1), "k3-s2": (3, 200, 2), "k3-s3": (3, 200, 3),
    "k5-s2": (5, 200, 2), "k3-c100": (3, 100, 0), "k5-c100": (5, 100, 0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--points", default=",".join(POINTS),
                        help=f"Comma-separated, of: {', '.join(POINTS)}.")
    parser.add_argument("--examples", type=int, default=1200,
                        help="How many questions the bundled adapter was trained on "
                             "(answer_adapters.py --examples): they are left out.")
    args = parser.parse_args()
    questions, docs = validation_questions(args.questions, args.examples)
    print(f"{len(questions)} validation questions; CPU: {cpu_flags()}")
    base = load_settings()
    generator = build_generator(replace(base.generator, adapter="auto"))
    work = RESULTS / "context-curve"
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    for name in args.points.split(","):
        k, size, sentences = POINTS[name]
        settings = replace(base, chunking=replace(base.chunking, max_tokens=size),
                           retrieval=replace(base.retrieval, k=k, sentences=sentences))
        folder = RESULTS / "answer-adapter" / "train" if size == 200 else work / f"c{size}"
        kb = paragraph_kb(folder, docs, settings)
        answers = run_arm(kb, generator, questions, work / f"{name}.jsonl", name)
        kb.close()
        rows[name] = {**summary(answers), "k": k, "chunk_tokens": size, "sentences": sentences,
                      "shown_gold": sum(r["shown_gold"] for r in answers) / len(answers)}
        r = rows[name]
        print(f"\r{name}: F1 {r['f1']:.3f} EM {r['em']:.3f} shown {r['shown_gold']:.3f} "
              f"prompt {r['prompt_tokens_p50']} tokens, p50 {r['p50_s']:.2f} s")
    print("\n| point | k | chunk tokens | sentences | F1 | EM | citation precision | gold shown "
          f"| prompt tokens p50 | p50 s | p95 s |\n|{'---|' * 11}")
    for name, r in rows.items():
        cp = f"{r['citation_precision']:.3f}" if r["citation_precision"] is not None else "-"
        print(f"| {name} | {r['k']} | {r['chunk_tokens']} | {r['sentences'] or 'all'} | "
              f"{r['f1']:.3f} | {r['em']:.3f} | {cp} | {r['shown_gold']:.3f} | "
              f"{r['prompt_tokens_p50']:.0f} | {r['p50_s']:.2f} | {r['p95_s']:.2f} |")
    print(f"wrote {write_result('context_curve', {'cpu': cpu_flags(), 'points': rows})}")


if __name__ == "__main__":
    main()
