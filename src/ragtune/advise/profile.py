"""What the advisor knows about the user's case: the article's five dimensions and two more.

A :class:`Profile` comes from flags, a TOML file (``ragtune advise --profile advise.toml``),
the questionnaire, or ``ragtune profile`` (measured); any field may be unknown (``None``), and
the advice then says what it assumed.

Example ``advise.toml``::

    change = "weekly"        # how often the knowledge changes
    expertise = "lookup"     # lookup | mixed | expert
    sources = "required"     # required | preferred | not-needed
    queries_per_month = 50000
    budget_initial = 60000   # in the cost model's currency
    latency_ms = 1000
    labelled = 200           # question/answer or instruction examples you have
    gpu = false
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError

# days between changes of the knowledge, per level
CHANGE_DAYS = {"hourly": 1 / 24, "daily": 1.0, "weekly": 7.0, "monthly": 30.0,
               "quarterly": 91.0, "yearly": 365.0, "static": math.inf}
EXPERTISE = ("lookup", "mixed", "expert")
SOURCES = ("required", "preferred", "not-needed")
CHOICES: dict[str, tuple[str, ...]] = {
    "change": tuple(CHANGE_DAYS), "expertise": EXPERTISE, "sources": SOURCES}
# answers typed in Chinese at the questionnaire
ALIASES = {
    "每小时": "hourly", "每天": "daily", "每日": "daily", "每周": "weekly", "每月": "monthly",
    "每季度": "quarterly", "每年": "yearly", "不变": "static",
    "查询": "lookup", "事实": "lookup", "混合": "mixed", "专家": "expert",
    "必须": "required", "最好": "preferred", "不需要": "not-needed", "无需": "not-needed",
}
NUMBERS = ("queries_per_month", "budget_initial", "budget_monthly", "latency_ms", "labelled",
           "question_overlap")


@dataclass(frozen=True)
class Profile:
    """The user's case; ``None`` means not known."""

    change: str | None = None  # one of CHANGE_DAYS
    expertise: str | None = None  # facts lookup, a mix, or expert reasoning and style
    sources: str | None = None  # must answers show their sources (compliance, audit)?
    queries_per_month: float | None = None
    budget_initial: float | None = None  # in the cost model's currency
    budget_monthly: float | None = None
    latency_ms: float | None = None  # per-request budget
    labelled: int | None = None  # labelled examples available for training
    gpu: bool | None = None
    question_overlap: float | None = None  # measured: share of question words in the documents
    measured: tuple[str, ...] = ()  # fields that ``ragtune profile`` measured, not asked

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "profile") -> Profile:
        """Validate and convert; errors name the field, the value and the valid choices."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: "
                              + ", ".join(sorted(known - {'measured'})))
        values: dict[str, Any] = {}
        for key, value in data.items():
            if value is None or value == "":
                continue
            if key in CHOICES:
                text = str(value).strip().lower().replace("_", "-")
                text = ALIASES.get(text, text)
                if text not in CHOICES[key]:
                    raise ConfigError(f"{where}: {key} = {value!r} is not one of "
                                      + ", ".join(CHOICES[key]))
                values[key] = text
            elif key in NUMBERS:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{where}: {key} = {value!r} is not a number") from None
                if number < 0 or math.isnan(number):
                    raise ConfigError(f"{where}: {key} = {value!r} must be a number >= 0")
                values[key] = int(number) if key == "labelled" else number
            elif key == "gpu":
                values[key] = _boolean(value, where)
            elif key == "measured":
                values[key] = tuple(str(v) for v in value)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        data = read_toml(path, "profile", "write one with `ragtune profile --kb DIR --out "
                         "advise.toml` or see `ragtune advise --help`")
        return cls.from_mapping(data.get("profile", data), where=str(path))

    def merged(self, other: Profile) -> Profile:
        """This profile with ``other``'s known fields on top."""
        given = {k: v for k, v in asdict(other).items() if v is not None and k != "measured"}
        return replace(self, **given, measured=tuple(
            m for m in self.measured if m not in given) + other.measured)

    def missing(self) -> list[str]:
        return [f.name for f in fields(self)
                if f.name not in ("measured", "question_overlap") and getattr(self, f.name) is None]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured"] = list(self.measured)
        return data

    def to_toml(self) -> str:
        """The known fields as TOML, with the measured ones commented as such."""
        lines = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "measured":
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = f'"{value}"'
            elif isinstance(value, float) and value.is_integer():
                text = str(int(value))
            else:
                text = f"{value:.3g}" if isinstance(value, float) else str(value)
            note = "  # measured" if f.name in self.measured else ""
            lines.append(f"{f.name} = {text}{note}")
        if self.measured:
            lines.append("measured = [" + ", ".join(f'"{m}"' for m in self.measured) + "]")
        return "\n".join(lines) + "\n"


def read_toml(path: str | Path, what: str, hint: str) -> dict[str, Any]:
    """A TOML file's tables; errors name the file and say what to do (``hint``)."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} not found; {hint}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {p}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not valid TOML ({exc}); {hint}") from None


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "y", "true", "1", "是", "有"):
        return True
    if text in ("no", "n", "false", "0", "否", "没有", "无"):
        return False
    raise ConfigError(f"{where}: gpu = {value!r} is not yes or no")


def change_level(days: float) -> str:
    """The coarsest level whose period covers ``days`` between changes."""
    for level, period in CHANGE_DAYS.items():
        if days <= period * 1.5:
            return level
    return "static"
