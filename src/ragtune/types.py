"""The data that flows through ragtune: documents, chunks, hits, answers.

All are frozen dataclasses; ``to_dict`` gives the stable JSON form used by ``--json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict


class Message(TypedDict):
    """One chat message in the OpenAI shape."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Section:
    """A run of a document's text that shares one page and one heading.

    ``start`` is the character offset of ``text`` in the document's full text
    (:attr:`Document.text`), so chunk spans are document offsets.
    """

    text: str
    start: int = 0
    page: int | None = None  # 1-based, PDFs only
    heading: str | None = None  # section path, e.g. "Install › From source"
    line: int | None = None  # 1-based line where the section starts (text files, JSONL records)
    kind: str = "text"  # "table": a Markdown table (header, rule, rows; documents.tables)
    # PDFs: (start, end, x0, y0, x1, y1) per line of ``text``: its span and its box on the
    # page, in fractions of the page from its top-left corner (documents.boxes)
    boxes: tuple[tuple[int, int, float, float, float, float], ...] = field(
        default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Document:
    """A parsed file (or one record of a JSON/JSONL file).

    Example:
        >>> doc = Document.from_text("notes.txt", "Paris is the capital of France.")
        >>> doc.sections[0].start
        0
    """

    source: str  # the file it came from, as stored in the knowledge base
    sections: tuple[Section, ...]
    title: str | None = None
    record: int | None = None  # index of the record within a JSON/JSONL file
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def text(self) -> str:
        """The full text, sections joined by blank lines (section starts index into it)."""
        return "\n\n".join(s.text for s in self.sections)

    @classmethod
    def from_text(cls, source: str, text: str, title: str | None = None) -> Document:
        return cls(source=source, sections=(Section(text=text, start=0, line=1),), title=title)

    @classmethod
    def from_sections(
        cls, source: str, parts: Sequence[tuple[str, int | None, str | None, int | None]]
        | Sequence[tuple[str, int | None, str | None, int | None, str, tuple[Any, ...]]],
        title: str | None = None, record: int | None = None,
    ) -> Document:
        """Build from ``(text, page, heading, line)`` tuples, or ``(text, page, heading,
        line, kind, boxes)``, computing each section's offset (:func:`sections_of`)."""
        sections = sections_of(parts)
        return cls(source=source, sections=tuple(sections), title=title, record=record)


def sections_of(parts: Iterable[tuple[Any, ...]]) -> Iterator[Section]:
    """The sections of ``(text, page, heading, line[, kind, boxes])`` parts, empty ones left
    out, each with its offset in the document's text (sections joined by blank lines)."""
    offset = 0
    for text, page, heading, line, *more in parts:
        if not text.strip():
            continue
        kind: Any = more[0] if more else "text"
        boxes: Any = more[1] if len(more) > 1 else ()
        yield Section(text=text, start=offset, page=page, heading=heading, line=line,
                      kind=kind, boxes=boxes)
        offset += len(text) + 2  # the "\n\n" that Document.text puts between sections


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed, with its provenance.

    ``context`` is the document-level context a chunk alone lacks (title, section path);
    it is indexed with the text (dense and lexical) but not shown as the chunk's text.
    """

    id: str
    source: str
    text: str
    start: int  # character span in the document's text: text == document.text[start:end]
    end: int
    page: int | None = None
    heading: str | None = None
    line: int | None = None
    title: str | None = None
    record: int | None = None
    context: str = ""
    kind: str = "text"  # "table": rows of a table, whose header row ends ``context``
    # PDFs: one (x0, y0, x1, y1) per line of the chunk on its page, in fractions of the
    # page from its top-left corner (documents.boxes)
    boxes: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def index_text(self) -> str:
        """What the embedder and the lexical index see: context line, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the scores of each retriever."""

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "id": c.id, "source": c.source, "page": c.page, "text": c.text,
            "score": round(self.score, 6), "heading": c.heading, "line": c.line,
            "start": c.start, "end": c.end, "kind": c.kind,
            "boxes": [list(b) for b in c.boxes],
            "dense_score": None if self.dense_score is None else round(self.dense_score, 6),
            "lexical_score": None if self.lexical_score is None else round(self.lexical_score, 6),
        }


@dataclass(frozen=True)
class Citation:
    """A numbered source the answer cites, and whether it supports what cites it.

    ``support`` is in [0, 1]: the best support score of the chunk for the answer
    sentences attributed to it; ``supported`` is ``support >= threshold``.
    """

    n: int
    chunk: Chunk
    score: float  # retrieval score
    support: float
    supported: bool
    sentences: tuple[int, ...] = ()  # indices of the answer sentences attributed to it
    marked: bool = False  # the model wrote [n] itself (otherwise attributed by ragtune)
    suspicious: bool = False  # the source holds instruction-like text (rag.injection)

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "n": self.n, "id": c.id, "source": c.source, "page": c.page, "text": c.text,
            "score": round(self.score, 6), "supported": self.supported,
            "support": round(self.support, 4), "marked": self.marked,
            "suspicious": self.suspicious,
            "sentences": list(self.sentences), "line": c.line, "heading": c.heading,
            "kind": c.kind, "boxes": [list(b) for b in c.boxes],
        }


@dataclass(frozen=True)
class Answer:
    """An answer with its citations, what did not fit the context, timings and token counts."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    dropped: tuple[Hit, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    language: str = "en"
    kb_version: int | None = None
    pipeline: str = "rag"
    steps: tuple[str, ...] = ()  # the steps that ran, in order (timings hold their ms)
    adapter: str | None = None  # the LoRA adapter that generated, if any
    route: dict[str, Any] | None = None  # layered: the router's decision
    judge: dict[str, Any] | None = None  # layered: the judge's verdicts, in order
    abstained: bool = False  # declined to answer (layered's abstain, or a model refusal)
    context: tuple[Chunk, ...] = ()  # the sources shown to the model, numbered from 1
    unsupported: tuple[str, ...] = ()  # answer sentences that no source supports
    notes: tuple[str, ...] = ()  # what the user should know (a question that was cut, ...)
    abstain_probability: float | None = None  # see Completion.abstain_probability
    similarity: float | None = None  # best cosine of a retrieved chunk or sentence (rag.relevance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "pipeline": self.pipeline,
            "steps": list(self.steps),
            "adapter": self.adapter,
            "route": self.route,
            "judge": self.judge,
            "abstained": self.abstained,
            "abstain_probability": (None if self.abstain_probability is None
                                    else round(self.abstain_probability, 4)),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "citations": [c.to_dict() for c in self.citations],
            "unsupported": list(self.unsupported),
            "notes": list(self.notes),
            "dropped": [
                {"id": h.chunk.id, "source": h.chunk.source, "page": h.chunk.page,
                 "score": round(h.score, 6)}
                for h in self.dropped
            ],
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "language": self.language,
            "kb_version": self.kb_version,
        }


@dataclass(frozen=True)
class Completion:
    """What a generator returns for one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"  # "stop" or "length"
    # the probability the model gave its abstention before answering, where it was weighed
    # (local generator, bundled grounded adapter, greedy)
    abstain_probability: float | None = None
