"""Fine-tuning data: read and check examples, split train/eval, write a prepared folder.

A prepared folder holds ``train.jsonl`` and ``eval.jsonl``, one example a line::

    {"id": "...", "messages": [{"role": ..., "content": ...}, ...], "group": ..., "origin": ...}

where the messages end with an assistant turn and ``origin`` is ``FILE:LINE``, and
``data.json``: the inputs with their format and sha256, the counts, the split settings,
token statistics under the base model's chat template and the sha256 of both files.
``ragtune tune prepare`` writes it with :func:`prepare`; the trainer reads it with
:func:`load_prepared`.

The module is long because reading is where bad input is caught: each reader (JSONL line by
line, one JSON array, the encodings) reports the file and line of every bad record, and the
prepared folder is replaced whole or not at all; the formats themselves live in
:mod:`ragtune.tune.formats` and the split in :mod:`ragtune.tune.split`.

Example:
    >>> info = prepare(["alpaca.json"], "prepared")  # doctest: +SKIP
    >>> train, held_out, info = load_prepared("prepared")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ragtune._version import package_version
from ragtune.errors import ConfigError, DataError
from ragtune.tune.formats import Example, RecordError, converter, detect
from ragtune.tune.split import split_examples
from ragtune.tune.tokens import ChatTokenizer, TokenCounter, token_stats

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_BASE = "smollm2-135m-instruct"
PREPARED_FILES = ("train.jsonl", "eval.jsonl", "data.json")
MAX_LISTED = 20  # problems quoted in a DataError message; data.json lists them all
_WS = re.compile(r"[ \t\n\r]*")


@dataclass
class InputFile:
    """One input file as read: its detected format, content hash and record count."""

    path: str
    format: str | None
    sha256: str
    records: int


@dataclass
class ReadReport:
    """What :func:`read_records` found: inputs, problems (one line each) and duplicates."""

    inputs: list[InputFile] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    duplicates: int = 0

    @property
    def read(self) -> int:
        return sum(f.records for f in self.inputs)


# --- reading files -----------------------------------------------------------------------------

class _Item(NamedTuple):
    label: str  # "line 7" or "record 3 (line 41)", for messages
    line: int
    key: str | None  # the id when a .json object maps ids to records
    value: Any


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                        "re-save the file as UTF-8") from None


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _jsonl_items(text: str, name: str, problems: list[str]) -> list[_Item]:
    items = []
    # not splitlines(): it also splits at U+2028 and others, which JSON strings may hold raw
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            items.append(_Item(f"line {number}", number, None, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{name} line {number}: invalid JSON ({exc.msg} at column "
                            f"{exc.colno}); fix or remove that line")
    return items


def _json_items(text: str, name: str) -> list[_Item]:
    """The records of a JSON list, or of an object mapping ids to records, with the line
    where each starts (``json.loads`` would lose it)."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos == len(text):
        return []
    opener = text[pos]
    if opener not in "[{":
        raise DataError(f"{name}: a .json file must hold a list of records or an object "
                        "mapping ids to records; use .jsonl for one record a line")
    closer = "]" if opener == "[" else "}"
    items: list[_Item] = []
    line, counted = 1, 0
    try:
        pos = _skip_ws(text, pos + 1)
        more = not text.startswith(closer, pos)
        while more:
            key = None
            if opener == "{":
                key, pos = decoder.raw_decode(text, pos)
                pos = _skip_ws(text, pos)
                if not isinstance(key, str) or not text.startswith(":", pos):
                    raise json.JSONDecodeError("Expecting a string key and ':'", text, pos)
                pos = _skip_ws(text, pos + 1)
            line += text.count("\n", counted, pos)
            counted = pos
            value, pos = decoder.raw_decode(text, pos)
            label = f"record {len(items)}" if key is None else f"record {key!r}"
            items.append(_Item(f"{label} (line {line})", line, key, value))
            pos = _skip_ws(text, pos)
            more = text.startswith(",", pos)
            if more:
                pos = _skip_ws(text, pos + 1)
            elif not text.startswith(closer, pos):
                raise json.JSONDecodeError(f"Expecting ',' or '{closer}'", text, pos)
        if text[pos + 1:].strip():
            raise json.JSONDecodeError("Extra data", text, pos + 1)
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                        f"{exc.msg}; a .json file must be valid JSON as a whole") from None
    if opener == "{" and any(not isinstance(i.value, dict) for i in items):
        bad = next(i for i in items if not isinstance(i.value, dict))
        raise DataError(f"{name}: the top-level object maps {bad.key!r} to a non-object; a "
                        ".json file must hold a list of records or an object mapping ids to "
                        "records (wrap a single record in [ ])")
    return items


def _read_file(path: Path, problems: list[str]) -> tuple[str, list[_Item]]:
    """The sha256 and the records of one .json / .jsonl file; bad JSONL lines go to
    ``problems``."""
    name = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise DataError(f"{name}: unsupported file type {suffix or '(none)'!r}; fine-tuning "
                        "data must be .json (a list of records, or an object mapping ids to "
                        "records) or .jsonl (one record a line)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{name} is a folder; name the .json or .jsonl files in it") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read: {exc.strerror or exc}") from None
    text = _decode(data, name)
    items = _jsonl_items(text, name, problems) if suffix == ".jsonl" else _json_items(text, name)
    return hashlib.sha256(data).hexdigest(), items


def _group(record: dict[str, Any], group_by: str | None) -> str | None:
    if group_by is None:
        return None
    value = record.get(group_by)
    if value is None:
        got = "is missing" if group_by not in record else "is null"
        raise RecordError(f"field {group_by!r} (used by --group-by) {got}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError(f"field {group_by!r} (used by --group-by) must be a string or a "
                          f"number, got {type(value).__name__}")
    return str(value)


def _record_id(item: _Item, record: dict[str, Any], stem: str, index: int) -> str:
    if item.key is not None:
        return item.key
    own = record.get("id")
    if isinstance(own, str | int) and not isinstance(own, bool) and str(own).strip():
        return str(own)
    return f"{stem}-{index}"


def _problems_error(problems: list[str], total: int) -> DataError:
    listed = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return DataError(f"{len(problems)} of {total} records are invalid:\n  {listed}{more}\n"
                     "fix them, or leave them out with --skip-invalid", problems)


def read_records(paths: Sequence[str | Path], fmt: str = "auto", template: str | None = None,
                 target_field: str | None = None, system: str | None = None,
                 group_by: str | None = None,
                 skip_invalid: bool = False) -> tuple[list[Example], ReadReport]:
    """Read, check and normalise the examples of ``.json`` / ``.jsonl`` files.

    ``fmt`` is ``auto`` (detected per file; ``template`` when a template is given) or one of
    :data:`ragtune.tune.formats.FORMATS`. ``system`` is added as the system message of
    examples that have none. ``group_by`` names the raw field holding each example's group.
    Exact duplicates (same messages) are dropped and counted.

    Raises:
        DataError: an unreadable file, or invalid records (all listed) unless
            ``skip_invalid``, or no valid record at all.
    """
    if fmt == "auto" and template:
        fmt = "template"
    if fmt != "auto":
        convert = converter(fmt, template=template, target_field=target_field)
    elif target_field:
        raise ConfigError("--target-field applies to the template format; give --template too")
    if not paths:
        raise DataError("no data files given; name .json or .jsonl files of examples")
    report = ReadReport()
    examples: list[Example] = []
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        name = str(raw)
        before = len(report.invalid)
        sha, items = _read_file(path, report.invalid)
        malformed = len(report.invalid) - before  # JSONL lines that are not JSON
        file_fmt = fmt if fmt != "auto" else detect(i.value for i in items)
        if file_fmt is None and items:
            first = next((i for i in items if isinstance(i.value, dict)), items[0])
            keys = ", ".join(first.value) if isinstance(first.value, dict) else "none"
            raise DataError(
                f"{name}: cannot tell the format; {first.label} has fields {keys}. Expected "
                "messages (OpenAI chat), conversations (ShareGPT), instruction + output "
                "(Alpaca) or prompt + completion; for other fields give --template and "
                "--target-field")
        if fmt == "auto" and file_fmt is not None:
            convert = converter(file_fmt)
        logger.info("%s: %s, %d records", name, file_fmt, len(items))
        for index, item in enumerate(items):
            record = item.value
            try:
                if not isinstance(record, dict):
                    raise RecordError(f"a record must be a JSON object, got "
                                      f"{type(record).__name__}")
                messages = convert(record)
                group = _group(record, group_by)
            except RecordError as exc:
                report.invalid.append(f"{name} {item.label}: {exc}")
                continue
            if system and messages[0]["role"] != "system":
                messages.insert(0, {"role": "system", "content": system})
            key = json.dumps(messages, ensure_ascii=False)
            if key in seen:
                report.duplicates += 1
                continue
            seen.add(key)
            examples.append(Example(id=_record_id(item, record, path.stem, index),
                                    messages=messages, group=group,
                                    origin=f"{name}:{item.line}"))
        report.inputs.append(InputFile(name, file_fmt, sha, len(items) + malformed))
    total = report.read
    if report.invalid and not skip_invalid:
        raise _problems_error(report.invalid, total)
    if not examples:
        files = ", ".join(str(p) for p in paths)
        reason = (f"all {total} records are invalid" if report.invalid
                  else "they hold no records")
        raise DataError(f"no valid examples in {files}: {reason}")
    return examples, report


def load_tokenizer(base: str) -> Any:
    """The tokenizer of ``base`` (a bundled model name, a .gguf file or a model folder),
    loaded offline. It must have a chat template: examples are rendered with it."""
    from ragtune.models.local_generator import resolve_model_dir
    from ragtune.models.offline import ensure_offline

    ensure_offline()
    path = resolve_model_dir(base)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"model {base!r} has no chat template; fine-tuning renders examples "
                          "with it, so choose an instruct (chat) model")
    return tokenizer


# --- the prepared folder -----------------------------------------------------------------------

def _jsonl_bytes(examples: Sequence[Example]) -> bytes:
    return "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples).encode()


def _check_out(out: Path) -> None:
    """``out`` may be new, empty or an earlier prepared folder (replaced), nothing else."""
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"{out} is a file; --out must name a folder")
        present = sorted(p.name for p in out.iterdir())
        if present and ("data.json" not in present or not set(present) <= set(PREPARED_FILES)):
            raise ConfigError(f"{out} exists and is not a prepared-data folder (it holds "
                              f"{', '.join(present[:5])}); choose a new or empty folder")


def _replace_folder(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a new folder beside ``out``, then swap it in: a failure never
    leaves ``out`` half-written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # not tempfile.mkdtemp: its mode 0o700 would stay with the renamed folder
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    old: Path | None = None
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if out.exists() and any(out.iterdir()):
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            if old is not None:
                os.replace(old, out)
                old = None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def prepare(paths: Sequence[str | Path], out: str | Path, *,
            tokenizer: ChatTokenizer | TokenCounter | None = None, base: str = DEFAULT_BASE,
            split: float = 0.1, group_by: str | None = None, seed: int = 0,
            fmt: str = "auto", template: str | None = None, target_field: str | None = None,
            system: str | None = None, skip_invalid: bool = False) -> dict[str, Any]:
    """Read, check and split the examples in ``paths``; write the prepared folder ``out``.

    ``tokenizer`` counts tokens; when None, the tokenizer of ``base`` is loaded (after the
    data has been checked, so bad data fails fast). Nothing is written unless everything
    succeeds. Returns the content of ``data.json``; see :func:`read_records` for the
    reading options and :func:`split_examples` for the split.
    """
    if not 0 <= split < 1:
        raise ConfigError(f"--split must be a fraction in [0, 1), such as 0.1; got {split}")
    out = Path(out).absolute()
    _check_out(out)
    examples, report = read_records(paths, fmt, template=template, target_field=target_field,
                                    system=system, group_by=group_by,
                                    skip_invalid=skip_invalid)
    train, held = split_examples(examples, split, seed=seed)
    if tokenizer is None:
        tokenizer = load_tokenizer(base)
    files = {"train.jsonl": _jsonl_bytes(train), "eval.jsonl": _jsonl_bytes(held)}
    train_groups = {ex["group"] for ex in train if ex["group"] is not None}
    eval_groups = {ex["group"] for ex in held if ex["group"] is not None}
    info: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "ragtune_version": package_version(),
        "base_model": base,
        "inputs": [asdict(f) for f in report.inputs],
        "options": {"format": fmt, "template": template, "target_field": target_field,
                    "system": system, "skip_invalid": skip_invalid},
        "counts": {"read": report.read, "valid": report.read - len(report.invalid),
                   "invalid": len(report.invalid), "duplicates": report.duplicates,
                   "train": len(train), "eval": len(held)},
        "invalid": report.invalid,
        "split": {"fraction": split, "seed": seed, "group_by": group_by,
                  "unit": f"group (field {group_by!r})" if group_by else "example",
                  "groups": {"train": len(train_groups), "eval": len(eval_groups)},
                  "eval_groups": sorted(eval_groups)},
        "tokens": {"train": token_stats(train, tokenizer), "eval": token_stats(held, tokenizer)},
        "hashes": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    files["data.json"] = (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode()
    _replace_folder(out, files)
    return info


def _not_prepared(folder: Path, why: str) -> DataError:
    return DataError(f"{folder} is not a prepared-data folder ({why}); create one with "
                     f"`ragtune tune prepare DATA... --out {folder}`")


def load_prepared(folder: str | Path) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """``(train, eval, info)`` of a folder written by :func:`prepare`.

    Each file is checked against the sha256 that ``data.json`` records for it (a folder
    written by other means, without ``hashes``, is read as it is).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _not_prepared(folder, "no such folder")
    try:
        info = json.loads((folder / "data.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _not_prepared(folder, "no data.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _not_prepared(folder, f"data.json is not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise _not_prepared(folder, "data.json does not describe prepared data")
    version = info.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DataError(f"{folder / 'data.json'} has format_version {version!r}, newer than "
                        f"this ragtune reads ({FORMAT_VERSION}); upgrade ragtune or run "
                        "`ragtune tune prepare` again")
    hashes = info.get("hashes") or {}
    parts: list[list[Example]] = []
    for name in ("train.jsonl", "eval.jsonl"):
        path = folder / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _not_prepared(folder, f"{name} is missing") from None
        if name in hashes and hashlib.sha256(data).hexdigest() != hashes[name]:
            raise DataError(f"{path} changed after `ragtune tune prepare` wrote it (its sha256 "
                            "differs from data.json); run `ragtune tune prepare` again")
        try:
            parts.append([json.loads(line) for line in data.decode("utf-8").split("\n")
                          if line.strip()])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _not_prepared(folder, f"{name} is not JSON lines: {exc}") from None
    return parts[0], parts[1], info
