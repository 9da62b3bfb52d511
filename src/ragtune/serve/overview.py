"""``GET /v1/kb``: what the web page shows before the first question, the knowledge base's
name, its size and a few example questions made from its documents.

The examples are made by rules, with no model call, from the first chunks of the first few
documents: a table row with a total becomes "What were total net sales in the three months
ended June 25, 2022?", a heading "What does guide.md say about Installation?", a first
sentence whose subject can be told "What does tower.md say about the Eiffel Tower?".
Documents are named by their display names, never by server paths.

Example::

    overview(kb, ("rag", "closed")).examples[0].question
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragtune.display import shown
from ragtune.knowledge_base import KnowledgeBase
from ragtune.serve.schemas import Example, KbOverview
from ragtune.types import Chunk

MAX_EXAMPLES = 4
MAX_QUESTION = 110  # characters: an example fits on one line of the page
CHUNKS_READ = 8  # the first chunks of a document that are tried
DOCUMENTS_READ = 12

_DETERMINERS = {"the", "a", "an", "every", "each", "all", "our", "this", "these", "its",
                "their", "your", "any", "most", "some"}
_VERBS = {"is", "are", "was", "were", "has", "have", "had", "can", "will", "must", "may",
          "should", "shall", "does", "do", "did", "cannot", "could", "would"}
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.S)
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"}
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def from_table(chunk: Chunk) -> str | None:
    """A row with a total (else the first row) asked for in the first period column."""
    rows = [_cells(line) for line in chunk.text.split("\n") if line.strip().startswith("|")]
    context = chunk.context.rstrip().split("\n")[-1] if chunk.context else ""
    header = _cells(context) if context.strip().startswith("|") else (rows.pop(0) if rows
                                                                     else [])
    rows = [r for r in rows if r and r[0] and any(any(ch.isdigit() for ch in c)
                                                   for c in r[1:])]
    if not rows:
        return None
    row = next((r for r in rows if "total" in r[0].lower()), rows[0])
    label = row[0].split(":")[-1].strip()
    label = label[0].lower() + label[1:] if label[:1].isupper() and not label[:2].isupper() \
        else label
    period = next((h for h in header[1:] if h), "")
    period = " ".join(w.lower() if w[1:].isalpha() and w[1:].islower()
                      and w.lower() not in _MONTHS else w
                      for w in period.split())  # Q1 and June stay as they are
    when = f" in the {period}" if period else ""
    verb = "were" if label.endswith("s") else "was"
    return f"What {verb} {label}{when}?"


def subject(sentence: str) -> str | None:
    """The subject of a plain sentence ("The Eiffel Tower was completed" -> "the Eiffel
    Tower"): the words before its first verb, when a rule can tell that verb."""
    words = _WORD.findall(sentence)
    for i, word in enumerate(words[:9]):
        if i == 0:
            continue
        low = word.lower()
        third_person = (low.endswith("s") and not low.endswith("ss") and i >= 2
                        and words[0].lower() in _DETERMINERS and words[i - 1].islower())
        if low in _VERBS or third_person:
            found = words[:i]
            # "The Eiffel Tower", "Plain notes": the capital only starts the sentence
            if found[0].istitle() and (found[0].lower() in _DETERMINERS or (
                    len(found) > 1 and all(w.islower() for w in found[1:]))):
                found[0] = found[0].lower()
            return " ".join(found) if len(found) <= 6 else None
    return None


def from_text(chunk: Chunk, name: str) -> str | None:
    """A heading, else the subject of the first sentence, asked about in document ``name``."""
    topic = chunk.heading.strip().lstrip("#").strip() if chunk.heading else ""
    if topic.endswith("?"):
        return topic
    if not topic or topic.lower() == name.lower():
        first = _SENTENCE.match(" ".join(chunk.text.split()) + " ")
        topic = (subject(first.group(1)) if first else None) or ""
    if not topic:
        return None
    if topic.isupper():
        topic = topic.title()
    return f"What does {name} say about {topic}?"


def example(chunk: Chunk, name: str) -> str | None:
    question = from_table(chunk) if chunk.kind == "table" else from_text(chunk, name)
    return question if question and len(question) <= MAX_QUESTION else None


def overview(kb: KnowledgeBase, pipelines: Sequence[str]) -> KbOverview:
    records = kb.sources()
    names = kb.display_names()
    examples: list[Example] = []
    for record in records[:DOCUMENTS_READ]:
        if len(examples) >= MAX_EXAMPLES:
            break
        ids = list(record.chunk_ids[:CHUNKS_READ])
        chunks = kb.reader.get(ids)
        source = shown(record.source, names)
        name = source.rsplit("/", 1)[-1]
        # a table's total first (its figures make the best example), then any table row,
        # then the first chunk of text that gives one
        found = [(c.kind != "table", "total" not in q.lower(), n, q)
                 for n, c in enumerate(chunks[i] for i in ids if i in chunks)
                 if (q := example(c, name)) and all(e.question != q for e in examples)]
        if found:
            examples.append(Example(question=min(found)[3], source=source))
    return KbOverview(name=kb.path.name, kb_version=kb.version, documents=len(records),
                      chunks=sum(len(r.chunk_ids) for r in records),
                      pages=sum(r.pages or 0 for r in records), pipelines=list(pipelines),
                      examples=examples)
