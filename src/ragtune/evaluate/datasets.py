"""Evaluation datasets: QA JSONL, SQuAD JSON (v1 and v2) and BEIR folders; splits.

QA JSONL, one question per line::

    {"id": "q1", "question": "...", "answers": ["...", "..."],
     "source": "handbook.pdf", "chunk_ids": ["..."]}

``answers`` may be a single string (``answer``); an empty list marks a question the
knowledge base cannot answer (the right reply is to decline). ``source`` (a file name, or
a document id) and ``chunk_ids`` say where the answer is, for retrieval metrics and
citation precision and recall; ``doc`` groups questions by document for splits (default:
``source``). Every line is checked; errors name the file, line and field.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import DataError

__all__ = ["QADataset", "QAItem", "load_beir", "load_qa", "split_items", "write_qa"]

SPLITS = ("question", "document")


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None = None
    chunk_ids: tuple[str, ...] = ()
    doc: str | None = None  # the document the question is about (splits group by it)
    context: str | None = None  # the gold passage text, when the dataset has it

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["answers"] = list(self.answers)
        out["chunk_ids"] = list(self.chunk_ids)
        return {k: v for k, v in out.items() if v not in (None, [], "")} | {
            "answers": list(self.answers)}


@dataclass
class QADataset:
    items: list[QAItem]
    kind: str  # qa-jsonl, squad-v1, squad-v2
    path: str
    sha256: str
    documents: dict[str, str] = field(default_factory=dict)  # doc id -> text (SQuAD)

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "sha256": self.sha256,
                "questions": len(self.items),
                "unanswerable": sum(not i.answerable for i in self.items),
                "documents": len({i.doc for i in self.items if i.doc})}


def _fail(path: Path, where: str, problem: str) -> DataError:
    return DataError(f"{path}, {where}: {problem}")


def _strings(value: Any, path: Path, where: str, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, where, f"field '{name}' must be a string or a list of strings")
    return tuple(v for v in value if v.strip())


def _qa_jsonl(path: Path, text: str) -> list[QAItem]:
    items: list[QAItem] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, where, f"not valid JSON ({exc.msg}); fix or delete the "
                                     "line") from exc
        if not isinstance(raw, dict):
            raise _fail(path, where, "expected a JSON object")
        question = raw.get("question")
        if not isinstance(question, str) or not question.strip():
            raise _fail(path, where, "field 'question' is missing or empty")
        if "answers" not in raw and "answer" not in raw:
            raise _fail(path, where, "field 'answers' is missing (use [] for a question "
                                     "the knowledge base cannot answer)")
        answers = _strings(raw.get("answers", raw.get("answer")), path, where, "answers")
        qid = str(raw.get("id", number))
        if qid in seen:
            raise _fail(path, where, f"id {qid!r} appears twice; ids must be unique")
        seen.add(qid)
        source = raw.get("source")
        if source is not None and not isinstance(source, str):
            raise _fail(path, where, "field 'source' must be a string")
        chunk_ids = _strings(raw.get("chunk_ids", []), path, where, "chunk_ids")
        doc = raw.get("doc", source)
        items.append(QAItem(qid, question.strip(), answers, source, chunk_ids,
                            None if doc is None else str(doc), raw.get("context")))
    return items


def _squad(path: Path, data: dict[str, Any]) -> tuple[list[QAItem], dict[str, str], str]:
    items: list[QAItem] = []
    documents: dict[str, str] = {}
    v2 = False
    try:
        for a, article in enumerate(data["data"]):
            title = str(article.get("title", f"article-{a}"))
            for p, paragraph in enumerate(article["paragraphs"]):
                doc = f"{title}-{p:03d}"
                documents[doc] = paragraph["context"]
                for qa in paragraph["qas"]:
                    impossible = bool(qa.get("is_impossible", False))
                    v2 = v2 or "is_impossible" in qa
                    answers = () if impossible else tuple(
                        dict.fromkeys(x["text"] for x in qa["answers"]))
                    items.append(QAItem(str(qa["id"]), str(qa["question"]).strip(), answers,
                                        doc, (), doc, paragraph["context"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not SQuAD-style JSON ({type(exc).__name__}: {exc}); "
                        "expected data[].paragraphs[].qas[] with id, question and "
                        "answers[].text") from exc
    return items, documents, "squad-v2" if v2 else "squad-v1"


def load_qa(path: str | Path) -> QADataset:
    """Questions with answers from QA JSONL or SQuAD JSON."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); convert it to "
                        "UTF-8") from exc
    sha = hashlib.sha256(raw).hexdigest()
    documents: dict[str, str] = {}
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(data, dict) or "data" not in data:
            raise DataError(f"{path}: expected SQuAD-style JSON with a 'data' list; for "
                            "other questions use QA JSONL (one object per line)")
        items, documents, kind = _squad(path, data)
    else:
        items, kind = _qa_jsonl(path, text), "qa-jsonl"
    if not items:
        raise DataError(f"{path}: no questions found")
    return QADataset(items, kind, str(path), sha, documents)


def write_qa(items: Sequence[QAItem], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")


def split_items(items: Sequence[QAItem], by: str = "question", test: float = 0.5,
                seed: int = 0) -> tuple[list[QAItem], list[QAItem]]:
    """Train and test questions.

    ``question``: within each document, a share ``test`` of its questions go to test, the
    rest to train (knowledge injection: the facts are in the documents, and training sees
    other questions about the same documents). ``document``: whole documents go to one side
    (generalisation: test documents are never seen in training).
    """
    if by not in SPLITS:
        raise DataError(f"unknown split {by!r}; valid choices: {', '.join(SPLITS)}")
    if not 0 < test < 1:
        raise DataError(f"the test share must be between 0 and 1, not {test}")
    rng = random.Random(seed)
    groups: dict[str, list[QAItem]] = {}
    for item in items:
        groups.setdefault(item.doc or item.source or item.id, []).append(item)
    train: list[QAItem] = []
    held: list[QAItem] = []
    if by == "document":
        names = sorted(groups)
        rng.shuffle(names)
        cut = max(1, round(len(names) * test))
        test_docs = set(names[:cut])
        for name in sorted(groups):
            (held if name in test_docs else train).extend(groups[name])
        return train, held
    for name in sorted(groups):
        group = list(groups[name])
        rng.shuffle(group)
        cut = round(len(group) * test)
        if len(group) > 1:
            cut = min(max(cut, 1), len(group) - 1)
        held.extend(group[:cut])
        train.extend(group[cut:])
    return train, held


def _beir_jsonl(path: Path, required: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The records of a BEIR JSONL file, each an object with the ``required`` fields."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: invalid JSON ({exc.msg}); fix or remove "
                                "that line") from None
            if not isinstance(record, dict) or any(k not in record for k in required):
                raise DataError(f"{path}:{number}: expected an object with "
                                f"{', '.join(required)}")
            yield record


def load_beir(folder: str | Path, split: str = "test") -> tuple[
        list[dict[str, Any]], dict[str, str], dict[str, dict[str, int]]]:
    """A BEIR folder: corpus records (in file order), queries by id, and qrels
    ``{query: {doc: grade}}`` of ``qrels/<split>.tsv``."""
    folder = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / name).is_file():
            raise DataError(f"{folder} is not a BEIR folder: {name} is missing")
    corpus = list(_beir_jsonl(folder / "corpus.jsonl", ("_id", "text")))
    queries = {q["_id"]: q["text"] for q in _beir_jsonl(folder / "queries.jsonl", ("_id", "text"))}
    qrels: dict[str, dict[str, int]] = {}
    path = folder / "qrels" / f"{split}.tsv"
    with path.open(encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        for row in reader:
            try:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path}:{reader.line_num}: expected tab-separated query-id, "
                                "corpus-id and an integer score under that header "
                                f"({type(exc).__name__}: {exc})") from None
    return corpus, queries, qrels
