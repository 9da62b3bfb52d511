"""JSON and JSON Lines: one document per record, its text from the usual text fields."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ragtune.documents.text import clean, decode, read_bytes
from ragtune.errors import DocumentError
from ragtune.types import Document

_TEXT_KEYS = ("text", "content", "body", "contents", "passage", "document", "context",
              "abstract", "original_text", "page_content")
_TITLE_KEYS = ("title", "name", "heading", "subject")


def _record_document(record: Any, source: str, index: int, line: int | None) -> Document | None:
    if isinstance(record, str):
        text, title = record, None
    elif isinstance(record, dict):
        title = next((str(record[k]) for k in _TITLE_KEYS if isinstance(record.get(k), str)), None)
        texts = [record[k] for k in _TEXT_KEYS if isinstance(record.get(k), str)]
        if texts:
            text = "\n\n".join(texts)
        else:  # no known text field: keep every string value, labelled
            text = "\n".join(f"{k}: {v}" for k, v in record.items()
                             if isinstance(v, str) and k not in _TITLE_KEYS)
        if isinstance(record.get("text"), list):
            text = "\n".join(str(t) for t in record["text"])
    else:
        return None
    text = clean(text)
    if not text:
        return None
    return Document.from_sections(source, [(text, None, title, line)], title=title, record=index)


def _json_records(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        yield from data
    elif isinstance(data, dict):
        if any(isinstance(data.get(k), str) for k in _TEXT_KEYS):
            yield data
        elif data and all(isinstance(v, dict) for v in data.values()):
            yield from data.values()  # {id: record, ...}
        else:
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) == 1:
                yield from lists[0]
            else:
                yield data
    else:
        yield data


def load_json(path: Path, source: str) -> list[Document]:
    text = decode(read_bytes(path), source)
    try:
        docs = [_record_document(r, source, i, None)
                for i, r in enumerate(_json_records(json.loads(text)))]
    except json.JSONDecodeError as exc:
        raise DocumentError(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                            f"{exc.msg}") from None
    except RecursionError:
        raise DocumentError(source, "JSON nested too deeply to read; flatten it") from None
    return [d for d in docs if d is not None]


def jsonl_documents(lines: Iterable[str], source: str) -> Iterator[Document]:
    """One document per record of a JSON Lines text given line by line; a line that is
    not JSON is an error naming it."""
    record = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = _record_document(json.loads(line), source, record, number)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{source}:{number}", f"invalid JSON on line {number}: {exc.msg}; "
                                "fix or remove that line") from None
        except RecursionError:
            raise DocumentError(f"{source}:{number}", f"JSON on line {number} is nested too "
                                "deeply to read; flatten it") from None
        if doc is not None:
            record += 1
            yield doc


def load_jsonl(path: Path, source: str) -> list[Document]:
    return list(jsonl_documents(decode(read_bytes(path), source).splitlines(), source))
