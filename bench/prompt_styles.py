"""Which prompt style lets the bundled generator answer best from retrieved sources.

150 SQuAD v1.1 dev questions over four articles (chosen with a fixed seed) ingested as one
file per paragraph; each question is answered from its top 3 hybrid hits (unless a variant
says otherwise) with each prompt variant, greedy, 48 new tokens. Reported: answers
containing a gold answer (after lower-casing and dropping punctuation).

    python bench/prompt_styles.py [--questions 150]
"""

from __future__ import annotations

import argparse
import re
import shutil

from ragtune import KnowledgeBase
from ragtune.models.local_generator import LocalGenerator
from ragtune.rag.prompts import build_messages

from _common import RESULTS, squad_corpus, write_result


def norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--only", nargs="*", help="run the variants whose names contain these")
    args = parser.parse_args()
    docs, questions = squad_corpus("prompt_styles_docs")
    questions = questions[: args.questions]
    kb_path = RESULTS / "prompt_styles_kb"
    shutil.rmtree(kb_path, ignore_errors=True)
    kb = KnowledgeBase.create(kb_path)
    kb.ingest([docs])
    generator = LocalGenerator(args.model)

    def system_in_user(q, chunks):
        system, user = build_messages(q, chunks, "en", "full")
        return [{"role": "user", "content": system["content"] + "\n\n" + user["content"]}]

    styles = {
        "full: system prompt, sources best last, question, no cue (default)":
            lambda q, c: build_messages(q, c, "en", "full"),
        "compact: one short instruction": lambda q, c: build_messages(q, c, "en", "compact"),
        "full, instructions in the user message": system_in_user,
    }
    full = styles["full: system prompt, sources best last, question, no cue (default)"]
    scored = {q: kb.search(q, k=3) for q, _ in questions}

    def cut(q: str, share: float) -> list:
        top = scored[q][0].score if scored[q] else 0.0
        return [h.chunk for h in scored[q] if h.score >= share * top]

    variants = {name: (build, lambda q: [h.chunk for h in scored[q]])
                for name, build in styles.items()}
    variants["full, top 1 only"] = (full, lambda q: [h.chunk for h in scored[q][:1]])
    variants["full, sources scoring >= 0.8 x the best"] = (full, lambda q: cut(q, 0.8))
    def cue(text: str):
        def build(q, c):
            system, user = build_messages(q, c, "en", "full")
            content = user["content"]
            body = content[: content.rindex(q) + len(q)]  # up to the question
            return [system, {"role": "user", "content": (body + "\n" + text).rstrip()}]
        return build

    variants["full, answer cue 'Answer with citations:'"] = (
        cue("Answer with citations:"), lambda q: [h.chunk for h in scored[q]])
    variants["full, answer cue 'Answer:'"] = (cue("Answer:"),
                                              lambda q: [h.chunk for h in scored[q]])
    variants["full, best source first"] = (
        lambda q, c: build_messages(q, c, "en", "full", order="best-first"),
        lambda q: [h.chunk for h in scored[q]])
    if args.only:
        variants = {k: v for k, v in variants.items() if any(o in k for o in args.only)}
    rows = {}
    for name, (build, sources) in variants.items():
        correct = 0
        for q, answers in questions:
            text = generator.generate(build(q, sources(q)), max_tokens=48).text
            correct += any(norm(a) in norm(text) for a in answers)
        rows[name] = correct
        print(f"| {name} | {correct} / {len(questions)} | {correct / len(questions):.1%} |",
              flush=True)
    write_result("prompt_styles", {"model": args.model, "questions": len(questions),
                                   "correct": rows})


if __name__ == "__main__":
    main()
