"""Latency of each pipeline on the same questions, split into its steps.

20 SQuAD v1.1 dev questions over four articles (fixed seed, one file per paragraph),
answered with the bundled models by the ``closed``, ``rag``, ``serial``, ``parallel``
and ``layered`` pipelines, greedy, 32 new tokens. With ``--adapter RUN`` the fine-tuned
model drafts and answers where its pipeline says so; without, the base model plays both roles (the
latency structure is the same).

Reported per pipeline: p50 of the total and of each step. For ``parallel``, the p50 of
its branches (draft and retrieval run at once) against the sum of the two, which is what
running them one after the other would cost.

    python bench/pipelines_latency.py [--questions 20] [--adapter RUN]
"""

from __future__ import annotations

import argparse
import shutil
import statistics

from ragtune import KnowledgeBase

from _common import RESULTS, squad_corpus, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--adapter")
    args = parser.parse_args()
    docs, pairs = squad_corpus("pipelines_docs")
    questions = [q for q, _ in pairs]
    questions = questions[: args.questions]
    kb_path = RESULTS / "pipelines_kb"
    shutil.rmtree(kb_path, ignore_errors=True)
    kb = KnowledgeBase.create(kb_path)
    kb.ingest([docs])
    kb.ask(questions[0], max_tokens=4)  # load the models before timing
    if args.adapter:
        kb.tuned_generator(args.adapter)

    result: dict = {"questions": len(questions), "adapter": args.adapter, "pipelines": {}}
    for name in ("closed", "rag", "serial", "parallel", "layered"):
        timings: dict[str, list[float]] = {}
        for q in questions:
            answer = kb.ask(q, pipeline=name, adapter=args.adapter, max_tokens=32)
            for key, ms in answer.timings.items():
                timings.setdefault(key, []).append(ms)
            if name == "parallel":
                t = answer.timings
                timings.setdefault("sum_of_branches_ms", []).append(
                    t["draft_ms"] + t["retrieve_ms"])
                timings.setdefault("sum_of_steps_ms", []).append(
                    t["draft_ms"] + t["retrieve_ms"] + t["total_ms"] - t["branches_ms"])
        p50 = {k: statistics.median(v) for k, v in timings.items()}
        result["pipelines"][name] = p50
        steps = ", ".join(f"{k} {v:.0f}" for k, v in p50.items() if k != "total_ms")
        print(f"| {name} | {p50['total_ms']:.0f} ms | {steps} |", flush=True)
    write_result("pipelines_latency", result)


if __name__ == "__main__":
    main()
