"""A comparison written three ways: one self-contained HTML page (tables and inline SVG
charts, no scripts or external files), a JSON file with everything, a Markdown summary."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from ragtune.evaluate.harness import Comparison

__all__ = ["markdown", "write_report"]

SHOWN = ("em", "f1", "rouge_l", "grounded", "citation_precision", "citation_recall",
         "abstain_right", "abstain_wrong")
_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def _interval(entry: dict[str, Any]) -> str:
    ci = entry.get("vs_reference")
    if not ci:
        return ""
    return f"{ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]"


def markdown(result: Comparison) -> str:
    ref = result.config["reference"]
    metrics = [m for m in SHOWN if any(s["metrics"][m]["mean"] is not None
                                       for s in result.summary.values())]
    lines = [f"# ragtune compare: {len(result.items)} questions from "
             f"{Path(result.config['dataset']['path']).name}", "",
             f"Reference arm: **{ref}**; brackets hold the paired bootstrap 95% interval of "
             "each arm's difference from it.", "",
             "| arm | " + " | ".join(metrics) + " | p50 ms | p95 ms | USD / 1k |",
             "|---|" + "---|" * (len(metrics) + 3)]
    for arm, s in result.summary.items():
        cells = []
        for m in metrics:
            entry = s["metrics"][m]
            diff = _interval(entry)
            cells.append(_fmt(entry["mean"]) + (f" ({diff})" if diff else ""))
        lines.append(f"| {arm} | " + " | ".join(cells)
                     + f" | {_fmt(s['latency_ms']['p50'], 0)} | {_fmt(s['latency_ms']['p95'], 0)}"
                     f" | {_fmt(s['cost_per_1k']['usd'], 4)} |")
    return "\n".join(lines) + "\n"


def _bar_chart(result: Comparison, metric: str) -> str:
    arms = list(result.summary)
    width, row, left = 520, 26, 90
    height = row * len(arms) + 30
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(metric)} by arm">']
    scale = width - left - 60
    for i, arm in enumerate(arms):
        entry = result.summary[arm]["metrics"][metric]
        mean = entry["mean"]
        y = 10 + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">'
                     f'{html.escape(arm)}</text>')
        if mean is None:
            parts.append(f'<text x="{left + 4}" y="{y + 15}" fill="#888">not measured</text>')
            continue
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{max(mean, 0) * scale:.1f}" '
                     f'height="{row - 8}" fill="{_COLOURS[i % len(_COLOURS)]}"/>')
        ci = entry.get("vs_reference")
        if ci:  # the arm's mean, with the interval of its difference from the reference
            lo = max(0.0, mean - (ci["diff"] - ci["low"]))
            hi = min(1.0, mean + (ci["high"] - ci["diff"]))
            yc = y + row / 2 - 1
            parts.append(f'<line x1="{left + lo * scale:.1f}" x2="{left + hi * scale:.1f}" '
                         f'y1="{yc}" y2="{yc}" stroke="#222" stroke-width="2"/>')
        parts.append(f'<text x="{left + max(mean, 0) * scale + 6:.1f}" y="{y + 15}">'
                     f'{mean:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _latency_chart(result: Comparison) -> str:
    arms = list(result.summary)
    width, row, left = 620, 26, 90
    stacks = {}
    for arm in arms:
        steps = result.summary[arm]["latency_ms"]["steps"]
        if "branches" in steps:  # parallel: draft and retrieve overlap inside branches
            steps = {k: v for k, v in steps.items() if k not in ("draft", "retrieve")}
        stacks[arm] = {k: v["mean"] for k, v in steps.items()}
    longest = max((sum(s.values()) for s in stacks.values()), default=1.0) or 1.0
    scale = (width - left - 80) / longest
    names = sorted({k for s in stacks.values() for k in s})
    colour = {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(names)}
    height = row * len(arms) + 40 + 18 * math.ceil(len(names) / 4)
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             'aria-label="mean latency per step">']
    for i, arm in enumerate(arms):
        y = 10 + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">'
                     f'{html.escape(arm)}</text>')
        x = float(left)
        for step, ms in stacks[arm].items():
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{ms * scale:.1f}" '
                         f'height="{row - 8}" fill="{colour[step]}">'
                         f'<title>{html.escape(step)}: {ms:.0f} ms</title></rect>')
            x += ms * scale
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{sum(stacks[arm].values()):.0f} ms'
                     '</text>')
    y0 = 20 + row * len(arms)
    for j, name in enumerate(names):
        x, y = left + (j % 4) * 130, y0 + (j // 4) * 18
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour[name]}"/>'
                     f'<text x="{x + 14}" y="{y + 9}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cost_chart(result: Comparison, metric: str = "f1") -> str:
    width, height, pad = 520, 300, 50
    points = [(arm, s["cost_per_1k"]["compute_s"], s["metrics"][metric]["mean"])
              for arm, s in result.summary.items() if s["metrics"][metric]["mean"] is not None]
    if not points:
        return ""
    xmax = max(p[1] for p in points) * 1.1 or 1.0
    ymax = max(max(p[2] for p in points) * 1.1, 0.05)
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             f'aria-label="{metric} against compute per 1,000 queries">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" '
             'stroke="#444"/>',
             f'<line x1="{pad}" y1="10" x2="{pad}" y2="{height - pad}" stroke="#444"/>',
             f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">compute seconds '
             'per 1,000 queries</text>',
             f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
             f'text-anchor="middle">{metric}</text>']
    for i, (arm, x, y) in enumerate(points):
        px = pad + x / xmax * (width - pad - 20)
        py = height - pad - y / ymax * (height - pad - 20)
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" '
                     f'fill="{_COLOURS[i % len(_COLOURS)]}"/>'
                     f'<text x="{px + 9:.1f}" y="{py + 4:.1f}">{html.escape(arm)} '
                     f'({y:.2f}, {x:.0f} s)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html(result: Comparison) -> str:
    cfg = result.config
    metrics = [m for m in SHOWN if any(s["metrics"][m]["mean"] is not None
                                       for s in result.summary.values())]
    head = "".join(f"<th>{m}</th>" for m in metrics)
    rows = []
    for arm, s in result.summary.items():
        cells = "".join(
            f"<td>{_fmt(s['metrics'][m]['mean'])}<br><small>"
            f"{html.escape(_interval(s['metrics'][m]))}</small></td>" for m in metrics)
        rows.append(f"<tr><th>{html.escape(arm)}</th>{cells}"
                    f"<td>{_fmt(s['latency_ms']['p50'], 0)}</td>"
                    f"<td>{_fmt(s['latency_ms']['p95'], 0)}</td>"
                    f"<td>{s['tokens']['prompt']:.0f} / {s['tokens']['completion']:.0f}</td>"
                    f"<td>{_fmt(s['cost_per_1k']['usd'], 4)}</td></tr>")
    charts = "".join(f"<figure><figcaption>{m}</figcaption>{_bar_chart(result, m)}</figure>"
                     for m in metrics)
    arms = "".join(f"<li><b>{html.escape(name)}</b>: pipeline {a['pipeline']}"
                   + (f", adapter {html.escape(a['adapter'])}" if a["adapter"] else "")
                   + "</li>" for name, a in cfg["arms"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ragtune compare</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px }}
table {{ border-collapse: collapse; margin: 1em 0 }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right }}
small {{ color: #666 }}
figure {{ display: inline-block; margin: 0 2em 1em 0; vertical-align: top }}
figcaption {{ font-weight: bold }}
svg text {{ font-size: 12px }}
</style></head><body>
<h1>ragtune compare</h1>
<p>{len(result.items)} questions from {html.escape(cfg['dataset']['path'])}
({html.escape(cfg['dataset']['kind'])}); knowledge base version
{cfg['knowledge_base']['version']}; generator {html.escape(str(cfg['generator']['model']))};
k = {cfg['k']}. Reference arm: <b>{html.escape(cfg['reference'])}</b>. Under each mean, the
paired bootstrap 95% interval of the arm's difference from the reference.</p>
<ul>{arms}</ul>
<h2>Results</h2>
<table><tr><th>arm</th>{head}<th>p50 ms</th><th>p95 ms</th><th>tokens in / out</th>
<th>USD / 1k queries</th></tr>{''.join(rows)}</table>
<h2>Metrics</h2>{charts}
<h2>Latency per step (mean)</h2>{_latency_chart(result)}
<h2>Accuracy against cost</h2>{_cost_chart(result)}
</body></html>
"""


def write_report(result: Comparison, out: Path) -> dict[str, Path]:
    """``report.json``, ``report.md`` and ``report.html`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=False),
                             encoding="utf-8")
    paths["md"].write_text(markdown(result), encoding="utf-8")
    paths["html"].write_text(_html(result), encoding="utf-8")
    return paths
