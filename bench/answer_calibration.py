"""Choose the thresholds at which a grounded answer abstains, on a validation split of the
training articles, never on the held-out articles that ``answer_quality.py`` reports on.

Validation questions are questions of ``answer_adapters.TRAIN_ARTICLES`` that were not
among the ``--examples`` sampled for training. Answerable: asked of a knowledge base of
every paragraph of the training articles. Unanswerable: asked of a knowledge base of the
other half of the training articles (alphabetical positions 0, 2, ... against 1, 3, ...),
without their own article. Each question is answered once with neither threshold (the
abstention weighed and never chosen), which records the best cosine similarity of a
retrieved chunk, the probability the model gives the abstention, and the answer it writes
otherwise. What the similarity gate compares is then measured for every question as
``ask`` measures it (:func:`ragtune.rag.relevance.relevance`: the best similarity of a
retrieved chunk or one of its sentences, and whether one chunk holds every term of the
question), and every pair of thresholds is scored from those:

- abstained: best similarity below ``retrieval.min_similarity`` with no chunk holding
  every term of the question, or abstention probability at
  ``generator.abstain_threshold`` or above;
- false abstention: answerable questions abstained on; F1 and EM (SQuAD) of the answers
  to the others (an abstention scores 0); abstention on the unanswerable questions.

The pair chosen gives the highest F1 among those that abstain on ``--min-unanswerable``
(80%) of the unanswerable questions or more while false abstention stays at ``--max-false``
(10%) or below; where no pair reaches both, the one that abstains most on unanswerable
questions within the false-abstention bound (ties: the higher F1). ``--write`` stores the
abstention threshold in the adapter's ``calibration.json``; the similarity threshold
becomes the embedder's default in ``ragtune/rag/min_similarity.json``.

    python bench/answer_calibration.py [--questions 300] [--unanswerable 150] [--write]
    python bench/answer_calibration.py --dataset drcd --examples 400 [--write]

``--dataset drcd``: the same on DRCD's training articles with the Chinese grounded model
(gemma-3-270m and its adapter, which gives no abstention probability: only the similarity
threshold is chosen) and the multilingual embedder, whose default it writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import replace
from typing import Any

from answer_adapters import LANGUAGE, PACKAGE, drcd_articles, kb_settings, squad_articles
from answer_quality import cpu_flags, run_arm
from ragtune.models.components import build_generator, language_generator

from _common import RESULTS, machine, paragraph_kb, write_result

ABSTAIN_GRID = [round(0.05 * i, 2) for i in range(1, 21)]  # 1.0: never
# 0: off; up to 0.995, since cosine scales differ (multilingual-e5 sits around 0.8)
SIMILARITY_GRID = [round(0.005 * i, 3) for i in range(0, 200)]


def abstains(row: dict[str, Any], similarity: float, threshold: float) -> bool:
    """Whether the answer abstains at these thresholds: it wrote the abstention itself (a
    generator that weighs none always may), or fell below either threshold."""
    return bool(row["abstained"] or (row["similarity"] < similarity and not row["covered"])
                or (row["p_abstain"] or 0.0) >= threshold)


def with_relevance(kb: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with what the similarity gate compares for their questions in ``kb``."""
    from ragtune.rag.relevance import relevance

    out = []
    for row in rows:
        hits = kb.search(row["question"])
        measured = relevance(row["question"], hits, kb.answer_embedder)
        out.append({**row, "similarity": measured.similarity,
                    "covered": measured.covered is not None})
    return out


def scores(answerable: list[dict[str, Any]], unanswerable: list[dict[str, Any]],
           similarity: float, threshold: float) -> dict[str, float]:
    """The validation figures if answers abstained at these thresholds."""
    kept = [r for r in answerable if not abstains(r, similarity, threshold)]
    return {
        "min_similarity": similarity, "threshold": threshold,
        "f1": sum(r["f1"] for r in kept) / len(answerable),
        "em": sum(r["em"] for r in kept) / len(answerable),
        "false_abstain": 1 - len(kept) / len(answerable),
        "abstain_unanswerable": (sum(abstains(r, similarity, threshold) for r in unanswerable)
                                 / max(1, len(unanswerable))),
    }


def validation_questions(n: int, examples: int = 800, seed: int = 0, dataset: str = "squad",
                         ) -> tuple[list[Any], dict[str, str]]:
    """``n`` questions of the training articles that ``answer_adapters.py`` did not sample
    for training (``examples`` with ``seed``), and every paragraph of those articles."""
    items, docs = (squad_articles if dataset == "squad" else drcd_articles)(train=True)
    trained = {i.id for i in random.Random(seed).sample(items, min(examples, len(items)))}
    left = [i for i in items if i.id not in trained]
    return random.Random(seed + 1).sample(left, min(n, len(left))), docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=tuple(LANGUAGE), default="squad")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--unanswerable", type=int, default=150)
    parser.add_argument("--examples", type=int, default=800,
                        help="How many questions answer_adapters.py sampled for training "
                             "(with --seed): they are left out.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-false", type=float, default=0.10,
                        help="The most false abstention allowed on answerable questions.")
    parser.add_argument("--min-unanswerable", type=float, default=0.80,
                        help="Abstention wanted on unanswerable questions: among the pairs "
                             "that reach it (false abstention within bounds), the highest "
                             "F1; 1 turns it off (the most abstention is chosen).")
    parser.add_argument("--max-added", type=float, default=0.02,
                        help="Where the model alone abstains on more answerable questions "
                             "than --max-false: the most the thresholds may add to that.")
    parser.add_argument("--write", action="store_true",
                        help="Store the chosen threshold in the adapter's calibration.json.")
    args = parser.parse_args()

    questions, docs = validation_questions(args.questions, args.examples, args.seed,
                                           args.dataset)
    print(f"{len(questions)} validation questions; CPU: {cpu_flags()}")
    lang = LANGUAGE[args.dataset]
    settings = kb_settings(args.dataset)
    settings = replace(settings, retrieval=replace(settings.retrieval, min_similarity=-1.0))
    gen = replace(settings.generator, adapter="auto", abstain_threshold=1.0)
    gen = language_generator(gen, lang) or gen  # what `ask` answers this language with
    generator = build_generator(gen)
    # the folder answer_adapters.py trained this adapter in (its knowledge bases)
    work = RESULTS / ("answer-adapter" if (lang, gen.model) == ("en", "smollm2-135m-instruct")
                      else f"answer-adapter-{gen.model}-{lang}")
    print(f"generator {gen.model} with {getattr(generator, 'adapter_name', None)}")
    kb = paragraph_kb(work / "train", docs, settings)  # every question reaches the model
    # the answers are the adapter's: cached apart for each adapter file
    weights = PACKAGE / f"{gen.model}-grounded-{lang}" / "adapter_model.safetensors"
    out = work / "calibration" / hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    out.mkdir(parents=True, exist_ok=True)
    answerable = run_arm(kb, generator, questions, out / "answerable.jsonl", "answerable")
    answerable = with_relevance(kb, answerable)
    kb.close()
    # a question is unanswerable in the base of the other half of the articles
    # (alternate articles: their names hold the article before the paragraph number)
    articles = sorted({d.rsplit("-", 1)[0] for d in docs})
    position = {t: n % 2 for n, t in enumerate(articles)}
    half = {d: position[d.rsplit("-", 1)[0]] for d in docs}
    unanswerable: list[dict[str, Any]] = []
    asked_all = questions[:args.unanswerable]
    for h in (0, 1):
        other = paragraph_kb(work / f"train-half-{1 - h}",
                             {d: t for d, t in docs.items() if half[d] == 1 - h}, settings)
        asked = [i for i in asked_all if half[i.doc or ""] == h]
        unanswerable += with_relevance(other, run_arm(
            other, generator, asked, out / f"unanswerable-{h}.jsonl", f"unanswerable {h + 1}/2"))
        other.close()
    # a generator that gives no abstention probability: the similarity threshold alone
    weighed = any(r["p_abstain"] is not None for r in answerable)
    grid = [scores(answerable, unanswerable, c, t)
            for c in SIMILARITY_GRID for t in (ABSTAIN_GRID if weighed else [1.0])]
    own = sum(r["abstained"] for r in answerable) / len(answerable)
    bound = args.max_false
    if own > bound:  # the model alone abstains more than that: bound what thresholds add
        bound = own + args.max_added
        print(f"the model itself abstains on {own:.1%} of the answerable questions, over "
              f"{args.max_false:.0%}: thresholds may add {args.max_added:.0%} to it")
    allowed = [g for g in grid if g["false_abstain"] <= bound + 1e-9]
    # the best answers among the pairs that meet both bounds; else the most abstention on
    # unanswerable questions the false-abstention bound allows
    both = [g for g in allowed if g["abstain_unanswerable"] >= args.min_unanswerable - 1e-9]
    chosen = (max(both, key=lambda g: (g["f1"], g["abstain_unanswerable"])) if both else
              max(allowed, key=lambda g: (g["abstain_unanswerable"], g["f1"])))
    rule = (f"the highest F1 with abstention on unanswerable questions at least "
            f"{args.min_unanswerable:.0%} and false abstention at most {bound:.1%}" if both else
            f"the most abstention on unanswerable questions with false abstention at most "
            f"{bound:.1%}")
    greedy = [r for r in answerable if r["abstained"]]
    print("\n| min_similarity | abstain_threshold | F1 | EM | false abstention | abstains, "
          f"unanswerable |\n|{'---|' * 6}")
    model_only = [g for g in grid if g["min_similarity"] == 0]
    similarity_only = [g for g in grid if g["threshold"] == 1.0]
    best = {id(max((g for g in allowed if g["min_similarity"] == c), default=None,
                   key=lambda g: (g["abstain_unanswerable"], g["f1"]))) for c in SIMILARITY_GRID}
    shown = ([*model_only, *similarity_only, *(g for g in grid if id(g) in best)]
             if weighed else similarity_only)
    shown = [g for g in shown if round(g["min_similarity"] / 0.025, 6) % 1 == 0]
    shown += [] if any(g is chosen for g in shown) else [chosen]
    for g in shown:
        mark = " (chosen)" if g is chosen else ""
        print(f"| {g['min_similarity']:.3f} | {g['threshold']:.2f}{mark} | {g['f1']:.3f} | "
              f"{g['em']:.3f} | {g['false_abstain']:.1%} | {g['abstain_unanswerable']:.1%} |")
    print(f"{len(greedy)} forced answers still came out as the abstention")
    path = write_result(f"answer_calibration{'' if lang == 'en' else '_' + args.dataset}", {
        "machine": machine(), "cpu": cpu_flags(), "questions": len(answerable),
        "unanswerable": len(unanswerable), "max_false": args.max_false, "bound": bound,
        "chosen": chosen, "grid": grid})
    print(f"wrote {path}")
    if args.write and weighed:
        target = PACKAGE / f"{gen.model}-grounded-{lang}" / "calibration.json"
        record = json.loads(target.read_text()) if target.exists() else {}
        record.update({
            "abstain": record.get("abstain", "The sources do not say."),
            "threshold": chosen["threshold"],
            "chosen_on": (f"{len(answerable)} answerable and {len(unanswerable)} unanswerable "
                          "questions of the training articles not trained on "
                          "(bench/answer_calibration.py), together with retrieval."
                          f"min_similarity {chosen['min_similarity']}: {rule}"),
            "validation": {k: round(v, 4) for k, v in chosen.items()},
        })
        target.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {target}")
    if args.write:
        from ragtune.rag.relevance import DEFAULTS

        defaults = json.loads(DEFAULTS.read_text()) if DEFAULTS.exists() else {}
        defaults[kb.manifest.embedder_model.lower()] = {
            "min_similarity": chosen["min_similarity"],
            "chosen_on": (f"bench/answer_calibration.py --dataset {args.dataset}: "
                          f"{len(answerable)} answerable and {len(unanswerable)} unanswerable "
                          f"{'SQuAD' if lang == 'en' else 'DRCD'} questions of the training "
                          f"articles not trained on, "
                          + (f"with abstain_threshold {chosen['threshold']}" if weighed else
                             "by similarity alone")
                          + f": {rule}"),
            "validation": {k: round(v, 4) for k, v in chosen.items()}}
        DEFAULTS.write_text(json.dumps(defaults, indent=2) + "\n")
        print(f"wrote {DEFAULTS}")


if __name__ == "__main__":
    main()
