"""Rebuild a bundled grounded-answer adapter from scratch: RAFT examples from SQuAD v1.1
dev (English) or DRCD dev (Chinese), LoRA on a bundled generator (SmolLM2-135M-Instruct by
default, ``--base gemma-3-270m``), the result copied into the package as
``<base>-grounded-<language>``.

Split by article: the examples come only from ``TRAIN_ARTICLES`` (every second SQuAD
article in alphabetical order; for DRCD the articles at even positions by title);
``bench/answer_quality.py`` evaluates on the others. Each example is
one question with its paragraph (the oracle) among 2 hard distractors from the retriever
over the training articles (3 sources, the default ``retrieval.k``), written with the
prompt ``ragtune ask`` shows; 80% keep the oracle and answer ``answer [n]``, the rest
answer ``The sources do not say.``. Checkpoints are kept for the learning curve
(``answer_quality.py --adapter`` on each).

    python bench/answer_adapters.py [--examples 2000] [--install]
    python bench/answer_adapters.py --dataset drcd --base gemma-3-270m --examples 240 --install
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from ragtune.evaluate.datasets import QAItem
from ragtune.tune.config import TrainConfig
from ragtune.tune.raft import build_raft
from ragtune.tune.train import train

from _common import RESULTS, ROOT, data_dir, machine, paragraph_kb, require

# alphabetical positions 0, 2, 4, ... of the 48 SQuAD v1.1 dev articles
TRAIN_ARTICLES = (
    "1973_oil_crisis", "American_Broadcasting_Company", "Black_Death", "Civil_disobedience",
    "Construction", "Doctor_Who", "European_Union_law", "French_and_Indian_War",
    "Genghis_Khan", "Harvard_University", "Immune_system",
    "Intergovernmental_Panel_on_Climate_Change", "Jacksonville,_Florida", "Martin_Luther",
    "Nikola_Tesla", "Oxygen", "Pharmacy", "Private_school", "Scottish_Parliament",
    "Southern_California", "Super_Bowl_50", "United_Methodist_Church",
    "Victoria_(Australia)", "Warsaw",
)
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ragtune" / "models" / "adapters"
LANGUAGE = {"squad": "en", "drcd": "zh"}
# the knowledge bases' embedder: Chinese questions need the multilingual one
EMBEDDER = {"squad": "", "drcd": "multilingual-e5-small"}


def squad_articles(train: bool) -> tuple[list[QAItem], dict[str, str]]:
    """Questions and paragraphs (``doc`` -> text) of the training or the held-out articles."""
    data = json.loads(require(data_dir() / "squad_v1.1" / "dev-v1.1.json").read_text())
    items, docs = [], {}
    for article in data["data"]:
        if (article["title"] in TRAIN_ARTICLES) != train:
            continue
        for p, paragraph in enumerate(article["paragraphs"]):
            doc = f"{article['title']}-{p:03d}"
            docs[doc] = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"]))
                items.append(QAItem(qa["id"], qa["question"].strip(), answers,
                                    f"{doc}.txt", doc=doc))
    return items, docs


def drcd_articles(train: bool) -> tuple[list[QAItem], dict[str, str]]:
    """Questions and paragraphs of DRCD dev's training articles (even positions by title)
    or held-out ones (odd positions, as ``answer_quality.held_out`` takes them)."""
    data = json.loads(require(data_dir() / "drcd" / "DRCD_dev.json").read_text(
        encoding="utf-8"))["data"]
    chosen = sorted(data, key=lambda a: a["title"])[0 if train else 1::2]
    items, docs = [], {}
    for a, article in enumerate(chosen):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc = f"{'t' if train else 'a'}{a:03d}-{p:03d}"
            docs[doc] = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(x["text"].strip() for x in qa["answers"]))
                items.append(QAItem(str(qa["id"]), qa["question"].strip(), answers,
                                    f"{doc}.txt", doc=doc))
    return items, docs


def kb_settings(dataset: str) -> Any:
    """The settings of the dataset's knowledge bases (its embedder, the rest default)."""
    from dataclasses import replace

    from ragtune import load_settings

    settings = load_settings()
    if EMBEDDER[dataset]:
        settings = replace(settings, embedder=replace(settings.embedder,
                                                      model=EMBEDDER[dataset]))
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=tuple(LANGUAGE), default="squad")
    parser.add_argument("--base", default="smollm2-135m-instruct",
                        help="The bundled generator to train the adapter for.")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--checkpoints", type=int, default=8,
                        help="Checkpoints kept along the run, for the learning curve.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=0, help="Stop early (timing runs).")
    parser.add_argument("--precision", default="auto", help="auto, bf16 or fp32.")
    parser.add_argument("--install", action="store_true",
                        help="Copy the trained adapter into the package.")
    parser.add_argument("--install-step", type=int, default=0,
                        help="Install the checkpoint of this step instead of the final "
                             "adapter (the shipped adapter is step 72 of the default run).")
    parser.add_argument("--install-only", action="store_true",
                        help="Install from the last run without training again.")
    parser.add_argument("--work", default="",
                        help="Folder under bench/results for the knowledge base, examples and "
                             "run (default: answer-adapter-<base>-<language>); a run stopped "
                             "early continues with `ragtune tune lora --resume WORK/run`.")
    args = parser.parse_args()

    lang = LANGUAGE[args.dataset]
    work = RESULTS / (args.work or ("answer-adapter" if args.dataset == "squad" and
                                    args.base == "smollm2-135m-instruct" else
                                    f"answer-adapter-{args.base}-{lang}"))
    if args.install_only:
        install(work / "run", args.base, lang, args.install_step)
        return
    items, docs = (squad_articles if args.dataset == "squad" else drcd_articles)(train=True)
    print(f"{args.dataset} training articles: {len(docs)} paragraphs, {len(items)} questions")
    kb = paragraph_kb(work / "train", docs, kb_settings(args.dataset))
    chosen = random.Random(args.seed).sample(items, min(args.examples, len(items)))
    t = time.perf_counter()
    shutil.rmtree(work / "raft-data", ignore_errors=True)
    info = build_raft(kb, chosen, work / "raft-data", distractors=2, p_oracle=0.8,
                      answer_style="plain", unanswerable="abstain", eval_split=0.02,
                      seed=args.seed, base=args.base)
    raft_s = time.perf_counter() - t
    print(f"raft: {info['raft']['written']} examples, {info['raft']['with_oracle']} with the "
          f"oracle, {info['counts']['train']} train / {info['counts']['eval']} eval "
          f"({raft_s:.0f} s)")
    steps = info["counts"]["train"] * args.epochs / 8
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    t = time.perf_counter()
    result = train(TrainConfig(
        base=args.base, data=str(work / "raft-data"), out=str(run), rank=args.rank,
        alpha=2 * args.rank,
        learning_rate=args.lr, epochs=args.epochs, max_steps=args.max_steps, batch_size=8,
        precision=args.precision,
        eval_samples=24, max_new_tokens=24, best_metric="eval_loss",
        save_every=max(1, round(steps / args.checkpoints)),
        keep_checkpoints=args.checkpoints + 1, seed=args.seed,
        extra={"recipe": "bench/answer_adapters.py", "dataset": args.dataset,
               "train_articles": (list(TRAIN_ARTICLES) if args.dataset == "squad" else
                                  "DRCD dev, even positions by title"),
               "examples": args.examples}))
    train_s = time.perf_counter() - t
    print(f"trained in {train_s:.0f} s: {json.dumps(result.get('final') or {}, default=str)}")
    (work / "build.json").write_text(json.dumps({
        "machine": machine(), "raft": info["raft"], "counts": info["counts"],
        "raft_s": raft_s, "train_s": train_s}, indent=2))
    if args.install:
        install(run, args.base, lang, args.install_step)


def install(run: Path, base: str, lang: str, step: int = 0) -> None:
    """The run's adapter (the checkpoint of ``step``, else the final one) and its
    ``run.json`` into the package's adapter folder. ``base_model_name_or_path`` becomes the
    bundled model's name, not this machine's conversion cache."""
    from ragtune.models.peft_adapters import adapter_dir

    target = PACKAGE / f"{base}-grounded-{lang}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    source = run / "checkpoints" / f"step-{step}" / "adapter" if step else adapter_dir(run)
    config = json.loads((source / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copy2(source / "adapter_model.safetensors", target / "adapter_model.safetensors")
    record = json.loads((run / "run.json").read_text())
    # paths of this machine become paths in the repository (or the bundled model's name)
    record["config"]["data"] = record["data"]["path"] = str(Path(
        record["config"]["data"]).resolve().relative_to(ROOT))
    record["config"]["out"] = str(Path(record["config"]["out"]).resolve().relative_to(ROOT))
    record["base_path"] = f"{base} (the bundled GGUF, converted)"
    steps = step or record.get("steps")
    record["shipped"] = {"step": steps, "of_steps": record.get("steps"),
                         "examples_seen": steps * record["config"]["batch_size"],
                         "adapter": str(source.relative_to(run))}
    (target / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"installed {source} as {target}")


if __name__ == "__main__":
    main()
