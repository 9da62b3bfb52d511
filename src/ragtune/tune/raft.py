"""RAFT training data from a knowledge base (Zhang et al. 2024, "RAFT: Adapting Language
Model to Domain Specific RAG").

For each question with its answer: find the oracle chunk (given by ``chunk_ids`` or
``source``, else located by the answer text), add hard distractors from the knowledge
base's own retriever (the chunks it ranks highest for the question that do not hold the
answer), keep the oracle in a share ``p_oracle`` of the examples (the rest teach the model
to say so when the sources miss: ``unanswerable="abstain"`` answers them with
:data:`ragtune.rag.prompts.ABSTAIN`, ``"answer"`` with the answer, as the paper does, for a
model meant to answer from what it learned), shuffle, and write the prompt
exactly as the ``serial`` pipeline will show it: numbered sources, then the question.

``answer_style="quote"`` (the paper's chain of thought) answers with the supporting
sentence quoted and cited, then ``Answer: ...`` on its own line; ``plain`` answers with
the answer and its citation, ``answer [n]``, the short cited answer that the bundled
grounded adapters are trained on. The output is a prepared folder for ``ragtune tune lora``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.documents.chunking import split_sentences
from ragtune.errors import ConfigError
from ragtune.evaluate.datasets import QAItem
from ragtune.evaluate.metrics import normalize_answer
from ragtune.rag.prompts import ABSTAIN, build_messages, detect_language
from ragtune.retrieve.filters import Filter
from ragtune.types import Chunk

__all__ = ["ANSWER_STYLES", "FINAL", "UNANSWERABLE", "RaftReport", "build_raft",
           "generate_questions"]

ANSWER_STYLES = ("quote", "plain")
UNANSWERABLE = ("abstain", "answer")
FINAL = {"en": "Answer:", "zh": "答案："}
@dataclass
class RaftReport:
    questions: int = 0
    written: int = 0
    with_oracle: int = 0
    excluded: int = 0
    no_oracle_found: list[str] = field(default_factory=list)
    oracle_by: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"questions": self.questions, "written": self.written,
                "with_oracle": self.with_oracle, "excluded": self.excluded,
                "no_oracle_found": len(self.no_oracle_found),
                "no_oracle_found_ids": self.no_oracle_found[:50],
                "oracle_located_by": self.oracle_by}


def _contains(chunk: Chunk, answers: Sequence[str]) -> bool:
    text = normalize_answer(chunk.text)
    return any(normalize_answer(a) and normalize_answer(a) in text for a in answers)


def _oracle(kb: Any, item: QAItem, depth: int) -> tuple[Chunk | None, str]:
    if item.chunk_ids:
        found = kb.reader.get(list(item.chunk_ids))
        chunks = [found[c] for c in item.chunk_ids if c in found]
        best = next((c for c in chunks if _contains(c, item.answers)), None)
        if best or chunks:
            return best or chunks[0], "chunk_ids"
    if item.source:
        hits = kb.search(item.question, k=depth, filter=Filter(source=f"*{item.source}*"))
        best = next((h.chunk for h in hits if _contains(h.chunk, item.answers)), None)
        if best or hits:
            return best or hits[0].chunk, "source"
    for query in (item.question, *item.answers[:1]):
        hits = kb.search(query, k=depth)
        best = next((h.chunk for h in hits if _contains(h.chunk, item.answers)), None)
        if best:
            return best, "answer text"
    return None, ""


def _quote(chunk: Chunk, answers: Sequence[str]) -> str:
    """The sentence of the chunk that holds the answer (the chunk's first, else)."""
    sentences = [chunk.text[s:e].strip() for s, e in split_sentences(chunk.text)]
    for sentence in sentences:
        if any(normalize_answer(a) and normalize_answer(a) in normalize_answer(sentence)
               for a in answers):
            return sentence
    return sentences[0] if sentences else chunk.text.strip()


def _answer(item: QAItem, oracle_n: int | None, oracle: Chunk | None, style: str,
            lang: str, unanswerable: str = "abstain") -> str:
    answer = item.answers[0].strip()
    if oracle_n is None or oracle is None:
        return ABSTAIN[lang] if unanswerable == "abstain" else answer
    if style == "plain":
        return f"{answer} [{oracle_n}]"
    quote = _quote(oracle, item.answers)
    if lang == "zh":
        return f"资料 [{oracle_n}] 写道：“{quote}”\n{FINAL['zh']}{answer}"
    return f'Source [{oracle_n}] says: "{quote}"\n{FINAL["en"]} {answer}'


_ASK = ("Write {n} questions that the passage below answers, each with its answer copied "
        "word for word from the passage (a short phrase, not a sentence). Reply with one JSON "
        'object per line and nothing else: {{"question": "...", "answer": "..."}}\n\n'
        "Passage:\n{text}")


def generate_questions(kb: Any, generator: Any, per_chunk: int = 2,
                       max_chunks: int | None = None, seed: int = 0,
                       ) -> tuple[list[QAItem], dict[str, int]]:
    """Questions and answers written by ``generator`` for chunks of the knowledge base.

    A pair is kept only when its answer appears in its chunk (after SQuAD normalisation):
    the check that catches a generator answering from elsewhere or paraphrasing. A weak
    generator (such as the bundled 135M model) writes few usable pairs; use a strong one
    through an OpenAI-compatible endpoint.
    """
    reader = kb.reader
    ids = list(reader.ids)
    random.Random(seed).shuffle(ids)
    ids = ids[:max_chunks] if max_chunks else ids
    counts = {"chunks": len(ids), "proposed": 0, "kept": 0, "unparsed": 0,
              "answer_not_in_chunk": 0}
    items: list[QAItem] = []
    seen: set[str] = set()
    for start in range(0, len(ids), 64):
        chunks = reader.get(ids[start:start + 64])
        for cid in ids[start:start + 64]:
            chunk = chunks[cid]
            reply = generator.generate(
                [{"role": "user", "content": _ASK.format(n=per_chunk, text=chunk.text)}],
                max_tokens=80 * per_chunk, temperature=0.0).text
            # one object per line is asked for; a JSON list or one line also parses
            for piece in re.findall(r"\{[^{}]*\}?", reply):
                try:
                    pair = json.loads(piece)
                    question = str(pair["question"]).strip()
                    answer = str(pair["answer"]).strip()
                except (ValueError, KeyError, TypeError):
                    counts["unparsed"] += 1
                    continue
                counts["proposed"] += 1
                if not question or not answer or not _contains(chunk, [answer]):
                    counts["answer_not_in_chunk"] += 1
                    continue
                key = normalize_answer(question)
                if key in seen:
                    continue
                seen.add(key)
                items.append(QAItem(f"gen-{len(items)}", question, (answer,), chunk.source,
                                    (chunk.id,), chunk.source))
                counts["kept"] += 1
    return items, counts


def build_raft(
    kb: Any,
    items: Sequence[QAItem],
    out: str | Path,
    *,
    distractors: int = 3,
    p_oracle: float = 0.8,
    answer_style: str = "quote",
    unanswerable: str = "abstain",
    exclude: Sequence[QAItem] = (),
    depth: int = 20,
    seed: int = 0,
    eval_split: float = 0.05,
    base: str = "smollm2-135m-instruct",
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Write RAFT examples for ``items`` as a prepared folder ``out`` (see the module)."""
    from ragtune.tune.data import prepare

    if answer_style not in ANSWER_STYLES:
        raise ConfigError(f"unknown answer style {answer_style!r}; valid choices: "
                          f"{', '.join(ANSWER_STYLES)}")
    if unanswerable not in UNANSWERABLE:
        raise ConfigError(f"unknown unanswerable {unanswerable!r}; valid choices: "
                          f"{', '.join(UNANSWERABLE)}")
    if not 0 <= p_oracle <= 1:
        raise ConfigError(f"--p-oracle must be between 0 and 1, not {p_oracle}")
    if distractors < 0:
        raise ConfigError("--distractors must be 0 or more")
    out = Path(out)
    settings = kb.settings.generator
    rng = random.Random(seed)
    held_ids = {i.id for i in exclude}
    held_questions = {normalize_answer(i.question) for i in exclude}
    report = RaftReport(questions=len(items))
    records = []
    for item in items:
        if item.id in held_ids or normalize_answer(item.question) in held_questions:
            report.excluded += 1
            continue
        if not item.answerable:
            continue
        oracle, how = _oracle(kb, item, depth)
        if oracle is None:
            report.no_oracle_found.append(item.id)
            continue
        report.oracle_by[how] = report.oracle_by.get(how, 0) + 1
        hard = [h.chunk for h in kb.search(item.question, k=depth)
                if h.chunk.id != oracle.id and not _contains(h.chunk, item.answers)]
        keep_oracle = rng.random() < p_oracle
        docs = hard[:distractors] if keep_oracle else hard[:distractors + 1]
        if keep_oracle:
            docs = [*docs, oracle]
        rng.shuffle(docs)
        lang = detect_language(item.question)
        oracle_n = docs.index(oracle) + 1 if keep_oracle else None
        # laid out as the serial pipeline lays out its prompt
        messages = build_messages(item.question, docs, lang, settings.prompt,
                                  settings.source_order)
        messages.append({"role": "assistant",
                         "content": _answer(item, oracle_n, oracle, answer_style, lang,
                                                    unanswerable)})
        records.append({"messages": messages, "group": item.doc or item.source or item.id,
                        "id": item.id})
        report.written += 1
        report.with_oracle += int(keep_oracle)
    if not records:
        raise ConfigError("no RAFT example could be written: "
                          + (f"{report.excluded} questions excluded, " if report.excluded
                             else "")
                          + f"{len(report.no_oracle_found)} without an oracle chunk in the "
                            "knowledge base (is it built from the documents these questions "
                            "are about?)")
    work = out.parent / f".{out.name}.examples.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    work.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    try:
        info = prepare([work], out, tokenizer=tokenizer, base=base, split=eval_split,
                       group_by="group", seed=seed, fmt="messages")
    finally:
        work.unlink(missing_ok=True)
    raft = {"distractors": distractors, "p_oracle": p_oracle, "answer_style": answer_style,
            "unanswerable": unanswerable,
            "seed": seed, "prompt": settings.prompt, "source_order": settings.source_order,
            **report.to_dict()}
    info["raft"] = raft
    (out / "raft.json").write_text(json.dumps(raft, indent=2, ensure_ascii=False),
                                   encoding="utf-8")
    return info
