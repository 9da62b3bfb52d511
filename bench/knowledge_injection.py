"""Knowledge injection on SQuAD v1.1 dev: closed-book, fine-tuned, RAG, fine-tuned + RAG
and RAFT, all on the same held-out questions, with paired bootstrap intervals.

The knowledge base is a sample of SQuAD dev paragraphs (one file each). Each paragraph's
questions are split in half (``ragtune eval split --by question``): training questions
teach the fine-tuned models, test questions score every arm. Two adapters are trained on
the training questions only:

- ``ft``: closed-book question -> answer pairs (the usual domain fine-tune);
- ``raft``: ``ragtune raft build`` examples (oracle paragraph among hard distractors from
  the retriever, 80% with the oracle, quoted answers), evaluation questions excluded.

Then ``ragtune compare`` runs closed, ft, rag, ft+rag and raft on the test questions.

    python bench/knowledge_injection.py [--paragraphs 30] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

from ragtune import KnowledgeBase
from ragtune.evaluate.datasets import QADataset, QAItem, load_qa, split_items, write_qa
from ragtune.evaluate.harness import compare, parse_arms
from ragtune.evaluate.report import markdown, write_report
from ragtune.pipelines import closed_messages
from ragtune.tune.config import TrainConfig
from ragtune.tune.data import prepare
from ragtune.tune.raft import build_raft
from ragtune.tune.train import train

from _common import RESULTS, data_dir, machine, require, write_result


def squad_items(paragraphs: int, seed: int) -> tuple[list[QAItem], dict[str, str]]:
    data = json.loads(require(data_dir() / "squad_v1.1" / "dev-v1.1.json").read_text())
    pool = [(a["title"], i, p) for a in data["data"] for i, p in enumerate(a["paragraphs"])
            if len(p["qas"]) >= 4]
    chosen = random.Random(seed).sample(pool, paragraphs)
    items, docs = [], {}
    for title, i, p in chosen:
        doc = f"{title[:40]}_{i}"
        docs[doc] = p["context"]
        for qa in p["qas"]:
            answers = tuple(dict.fromkeys(x["text"] for x in qa["answers"]))
            items.append(QAItem(qa["id"], qa["question"].strip(), answers, f"{doc}.txt",
                                doc=doc))
    return items, docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paragraphs", type=int, default=30)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--raft-epochs", type=float, default=2.0)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="closed,ft,rag,ft+rag,raft")
    parser.add_argument("--reuse", action="store_true",
                        help="Answer again with the knowledge base and adapters of the last "
                             "run (no training), into report-<max tokens>/.")
    args = parser.parse_args()

    work = RESULTS / "knowledge-injection"
    if args.reuse:
        rerun(work, args.arms, args.max_tokens)
        return
    shutil.rmtree(work, ignore_errors=True)
    (work / "docs").mkdir(parents=True)
    items, docs = squad_items(args.paragraphs, args.seed)
    for doc, text in docs.items():
        (work / "docs" / f"{doc}.txt").write_text(text, encoding="utf-8")
    train_q, test_q = split_items(items, "question", 0.5, args.seed)
    write_qa(train_q, work / "train.jsonl")
    write_qa(test_q, work / "test.jsonl")
    print(f"{len(docs)} paragraphs; {len(train_q)} train and {len(test_q)} test questions "
          "(split by question within each paragraph)")

    kb = KnowledgeBase.create(work / "kb")
    kb.ingest([work / "docs"])
    timings = {}

    # ft: closed-book pairs, the prompt the closed pipeline uses
    pairs = work / "ft-pairs.jsonl"
    pairs.write_text("".join(json.dumps({"messages": [
        *closed_messages(i.question, "en"),
        {"role": "assistant", "content": i.answers[0]}], "group": i.doc}) + "\n"
        for i in train_q), encoding="utf-8")
    prepare([pairs], work / "ft-data", split=0.0, fmt="messages")
    t = time.perf_counter()
    train(TrainConfig(data=str(work / "ft-data"), out=str(work / "ft-run"),
                      epochs=args.epochs, batch_size=8, eval_samples=0, seed=args.seed))
    timings["train_ft_s"] = time.perf_counter() - t

    # raft: oracle among hard distractors, test questions excluded
    info = build_raft(kb, train_q, work / "raft-data", distractors=2, p_oracle=0.8,
                      exclude=test_q, eval_split=0.0, seed=args.seed)
    print(f"raft: {info['raft']['written']} examples, {info['raft']['with_oracle']} with "
          f"the oracle, {info['raft']['excluded']} excluded")
    t = time.perf_counter()
    train(TrainConfig(data=str(work / "raft-data"), out=str(work / "raft-run"),
                      epochs=args.raft_epochs, batch_size=4, eval_samples=0, seed=args.seed))
    timings["train_raft_s"] = time.perf_counter() - t

    adapters = {"ft": str(work / "ft-run"), "raft": str(work / "raft-run")}
    arms = parse_arms(args.arms, adapters)
    dataset = QADataset(test_q, "squad-v1", str(work / "test.jsonl"), "")
    t = time.perf_counter()
    result = compare(kb, dataset, arms, work / "report", adapters=adapters, reference="rag",
                     max_tokens=args.max_tokens,
                     progress=lambda arm, done, total: print(
                         f"\r{arm}: {done}/{total}", end="", flush=True))
    timings["compare_s"] = time.perf_counter() - t
    print()
    write_report(result, work / "report")
    print(markdown(result))
    summary = {arm: {m: s["metrics"][m] for m in ("em", "f1", "citation_recall")}
               | {"p50_ms": s["latency_ms"]["p50"]} for arm, s in result.summary.items()}
    path = write_result("knowledge_injection", {
        "machine": machine(), "paragraphs": len(docs), "train_questions": len(train_q),
        "test_questions": len(test_q), "epochs": args.epochs, "raft_epochs": args.raft_epochs,
        "raft": info["raft"], "timings_s": timings, "summary": summary})
    print(f"wrote {path} and {work / 'report'}/report.html")


def rerun(work: Path, arms: str, max_tokens: int) -> None:
    """The same test questions, knowledge base and adapters, other arms or token budget."""
    if not (work / "kb").is_dir():
        raise SystemExit(f"{work} has no knowledge base; run without --reuse first")
    adapters = {"ft": str(work / "ft-run"), "raft": str(work / "raft-run")}
    out = work / f"report-{max_tokens}"
    result = compare(KnowledgeBase.open(work / "kb"), load_qa(work / "test.jsonl"),
                     parse_arms(arms, adapters), out, adapters=adapters, reference="rag",
                     max_tokens=max_tokens, progress=lambda arm, done, total: print(
                         f"\r{arm}: {done}/{total}", end="", flush=True))
    print()
    write_report(result, out)
    print(markdown(result))
    print(f"wrote {out}/report.html")


if __name__ == "__main__":
    main()
