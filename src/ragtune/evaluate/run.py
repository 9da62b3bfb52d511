"""``compare``: every arm answers the same questions; scores, report files and gates in one
call (what ``ragtune compare`` and ``ragtune eval qa`` run)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.evaluate.datasets import QADataset, load_qa
from ragtune.evaluate.harness import Comparison, Prices, check_gates, parse_arms, parse_gates
from ragtune.evaluate.harness import compare as run_arms
from ragtune.evaluate.report import write_report

__all__ = ["CompareResult", "compare"]


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` measured, where it wrote the report, and the gates missed."""

    comparison: Comparison
    report: dict[str, Path]  # json, md, html
    gates_missed: list[str]

    @property
    def summary(self) -> dict[str, dict[str, Any]]:
        return self.comparison.summary


def _check_adapters(adapters: Mapping[str, str | Path]) -> dict[str, str]:
    for name, run in adapters.items():
        if not name or not str(run):
            raise ConfigError(f"adapter {name}={run}: expected NAME=RUN, e.g. ft=runs/legal")
        if not Path(run).exists():
            raise ConfigError(f"adapter {name}={run}: {run} does not exist")
    return {name: str(run) for name, run in adapters.items()}


def compare(
    kb: Any,
    dataset: QADataset | str | Path,
    arms: str | Sequence[str],
    out: str | Path,
    *,
    adapters: Mapping[str, str | Path] | None = None,
    reference: str | None = None,
    k: int | None = None,
    max_tokens: int | None = None,
    limit: int | None = None,
    prices: Prices | str | Path | None = None,
    fail_under: Sequence[str] = (),
    samples: int = 2000,
    progress: Callable[[str, int, int], None] | None = None,
) -> CompareResult:
    """Answer ``dataset``'s questions with every arm of ``arms`` over the knowledge base
    ``kb`` (resuming from answers already in ``out``), score them, write ``report.json``,
    ``report.md`` and ``report.html`` in ``out`` and check the ``fail_under`` gates.

    ``arms``: "closed,rag" or a list (closed, rag, ft, ft+rag, raft, parallel, layered);
    ``adapters``: the fine-tuned run of each adapter key ({"ft": "runs/legal"});
    ``fail_under``: gates such as "rag.f1=0.30", missed ones are in ``gates_missed``.

    Example:
        >>> with KnowledgeBase.open("kb") as kb:  # doctest: +SKIP
        ...     result = compare(kb, "qa.jsonl", "closed,rag", "report")
        >>> result.summary["rag"]["metrics"]["f1"]["mean"]  # doctest: +SKIP
        0.41
    """
    checked = _check_adapters(adapters or {})
    chosen = parse_arms(arms, checked)
    gates = parse_gates(fail_under)
    data = dataset if isinstance(dataset, QADataset) else load_qa(Path(dataset))
    if not isinstance(prices, Prices):
        prices = Prices.load(Path(prices) if prices else None)
    comparison = run_arms(kb, data, chosen, Path(out), adapters=checked, reference=reference,
                          k=k, max_tokens=max_tokens, limit=limit, prices=prices,
                          samples=samples, progress=progress)
    paths = write_report(comparison, Path(out))
    return CompareResult(comparison, paths, check_gates(comparison.summary, gates))
