"""Shared by the benchmarks: where the datasets are, result files, the SQuAD corpus."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def data_dir() -> Path:
    """``$RAGTUNE_DATA``, else ``../shared/datasets`` beside the repository."""
    path = Path(os.environ.get("RAGTUNE_DATA", ROOT.parent / "shared" / "datasets"))
    return path


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"dataset not found: {path} (set RAGTUNE_DATA to the datasets folder)")
    return path


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**data, "machine": machine()}, indent=2))
    return path


def squad_corpus(name: str, articles: int = 4, seed: int = 0,
                 ) -> tuple[Path, list[tuple[str, list[str]]]]:
    """``articles`` SQuAD v1.1 dev articles (chosen with ``seed``) written as one file per
    paragraph under ``RESULTS/name``, and their questions with gold answers, shuffled."""
    import random
    import shutil

    path = require(data_dir() / "squad_v1.1" / "dev-v1.1.json")
    data = json.loads(path.read_text())["data"]
    rng = random.Random(seed)
    docs = RESULTS / name
    shutil.rmtree(docs, ignore_errors=True)
    docs.mkdir(parents=True)
    questions = []
    for a in rng.sample(data, articles):
        for i, p in enumerate(a["paragraphs"]):
            (docs / f"{a['title'][:30]}_{i}.txt").write_text(p["context"])
            questions += [(q["question"], [x["text"] for x in q["answers"]]) for q in p["qas"]]
    rng.shuffle(questions)
    return docs, questions


def paragraph_kb(folder: Path, docs: dict[str, str], settings: Any = None) -> Any:
    """A knowledge base of one file per paragraph (``doc`` -> text) under ``folder``,
    built the first time and opened after that, with ``settings`` when given (the
    defaults otherwise)."""
    from ragtune import KnowledgeBase

    if not (folder / "kb").exists():
        (folder / "docs").mkdir(parents=True, exist_ok=True)
        for doc, text in docs.items():
            (folder / "docs" / f"{doc}.txt").write_text(text, encoding="utf-8")
        with KnowledgeBase.create(folder / "kb", settings) as kb:
            print(kb.ingest([folder / "docs"]).summary())
    return KnowledgeBase.open(folder / "kb", settings)
