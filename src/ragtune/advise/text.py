"""The advice in words, English or Chinese: one template per reason code.

Templates are ``str.format`` strings over a reason's evidence, formatted for reading
(thousands separators, ranges as ``low-high``); :func:`render` lays out the whole advice.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from ragtune.advise.advice import Advice
from ragtune.advise.rules import Reason
from ragtune.errors import ConfigError

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "rag": "RAG", "finetune": "fine-tuning", "combination": "combination",
        "serial": "serial", "parallel": "parallel", "layered": "layered", "raft": "RAFT",
        "title": "Recommendation", "start": "Start with", "why": "Why",
        "assumed": "Assumed (not given)", "conflicts": "Conflicts",
        "costs": "Cost estimate ({currency})", "roadmap": "Roadmap", "next": "next",
        "done": "done", "initial": "initial", "monthly": "monthly",
        "maintenance": "maintenance/year", "latency": "latency", "per_1k": "per 1k queries",
        "measured": "measured", "break_even": "Break-even: fine-tuning pays back its training "
        "above {v} queries per month.", "break_even_never": "Break-even: fine-tuning's "
        "per-query cost is not lower, so volume never pays back its training.",
        "questionnaire": "The questionnaire alone pointed to {choice}; the measurements "
        "changed it.",
        "strength_3": "strong", "strength_2": "moderate", "strength_1": "weak",
        "strength_0": "note",
        # reasons
        "change_fast": "The knowledge changes {change}: a fine-tuned model would need about "
        "{retrains_per_year} retrainings a year to keep up, while re-ingesting takes minutes.",
        "change_monthly": "The knowledge changes monthly: retraining that often is costly; "
        "retrieval stays current by re-ingesting.",
        "change_quarterly": "The knowledge changes quarterly: retrieval keeps it current, "
        "though retraining each quarter is possible.",
        "change_stable": "The knowledge is {change}: it can live in the model's weights "
        "without frequent retraining.",
        "expertise_expert": "The task needs expert reasoning and a domain style: fine-tuning "
        "makes that instinct; retrieval alone supplies facts, not skill.",
        "expertise_mixed": "Part of the questions need expert reasoning: fine-tuning makes "
        "that instinct.",
        "expertise_mixed_lookups": "The other part looks up facts: retrieval answers those.",
        "expertise_lookup": "The questions look up facts: retrieval answers them from the "
        "documents without training.",
        "sources_required": "Answers must show their sources (compliance, audit): only "
        "retrieval gives traceable citations, so it must stay in the path.",
        "sources_preferred": "Sources are welcome: retrieval gives citations.",
        "sources_not_needed": "Answers need not cite sources: no constraint.",
        "volume_high": "{queries_per_month} queries a month is above the break-even of "
        "{break_even}: fine-tuning's shorter prompts pay back its training.",
        "volume_low": "{queries_per_month} queries a month is below the break-even of "
        "{break_even}: fine-tuning's training would not pay back.",
        "budget_no_finetune": "The initial budget of {budget_initial} {currency} is below "
        "fine-tuning's {finetune_initial}: RAG ({rag_initial}) fits.",
        "budget_below_rag": "The initial budget of {budget_initial} {currency} is below even "
        "RAG's {rag_initial}: start small (the bundled models, one knowledge base).",
        "budget_monthly_tight": "The monthly budget of {budget_monthly} {currency} is below "
        "RAG's running cost ({rag_monthly}) but within fine-tuning's ({finetune_monthly}).",
        "budget_monthly_below_all": "The monthly budget of {budget_monthly} {currency} is below "
        "every option's running cost: plan for the cheapest (local models, no server).",
        "latency_none_fits": "The latency budget of {latency_ms} ms is below even a "
        "fine-tuned model without retrieval ({finetune_ms} ms): use a smaller or faster "
        "model, and measure.",
        "latency_no_retrieval": "The latency budget of {latency_ms} ms leaves no room for "
        "retrieval (RAG takes {rag_ms} ms, a fine-tuned model {finetune_ms} ms).",
        "latency_fits": "The latency budget of {latency_ms} ms fits RAG ({rag_ms} ms).",
        "data_too_little": "Only {labelled} labelled examples: fine-tuning needs at least "
        "{minimum}; start with RAG and collect questions and answers from its use.",
        "data_plenty": "{labelled} labelled examples are plenty for fine-tuning.",
        "data_enough": "{labelled} labelled examples are enough to fine-tune (more than "
        "{good} would be better).",
        "gpu_none": "No GPU: LoRA on the bundled small models runs on a CPU; larger models "
        "need a rented GPU (in the fine-tuning cost).",
        "gpu_yes": "A GPU is available: LoRA, or QLoRA with --qlora, on larger models.",
        "overlap_high": "The questions reuse the documents' wording ({question_overlap} of "
        "their words appear in the best passage): retrieval finds the answers.",
        "overlap_low": "The questions share few words with the documents "
        "({question_overlap}): retrieval alone will often miss; fine-tuning (or a "
        "reranker) helps.",
        "overlap_mid": "The questions share {question_overlap} of their words with the "
        "best passage.",
        "assume_change": "How often the knowledge changes: not given; the cost table assumes "
        "{assumed_retrains_per_year} retraining a year. Daily or weekly changes would favour "
        "RAG.",
        "assume_expertise": "How much expertise the task needs: not given; expert reasoning "
        "or a domain style would favour fine-tuning.",
        "assume_sources": "Whether answers must show sources: not given; if required, "
        "retrieval must stay in the path.",
        "assume_queries_per_month": "Query volume: not given; costs assume {assumed} queries "
        "a month.",
        "assume_budget_initial": "Initial budget: not given; no option ruled out by cost.",
        "assume_budget_monthly": "Monthly budget: not given.",
        "assume_latency_ms": "Latency budget: not given; every option assumed fast enough.",
        "assume_labelled": "Labelled data: not given; fine-tuning assumed to have enough "
        "(at least 500 examples).",
        "assume_gpu": "GPU: not given; training costs assume a rented one if needed.",
        "conflict_sources_latency": "Sources are required but the latency budget leaves no "
        "room for retrieval: compliance outranks speed, so retrieval stays; the fastest "
        "pattern is chosen. Relax the budget or measure with `ragtune compare`.",
        "conflict_expertise_budget": "The task calls for fine-tuning (weight "
        "{finetune_weight}) but the budget rules it out: RAG with a domain prompt now, "
        "fine-tuning when the budget allows.",
        "conflict_fresh_latency": "The knowledge changes too often for fine-tuning alone "
        "(weight {rag_weight}) but retrieval does not fit the latency budget: a combination "
        "whose retrieval runs in parallel, or a larger budget.",
        "pattern_layered": "Pattern: layered. A router sends fact lookups to retrieval and "
        "expert questions to the fine-tuned model; a judge falls back or abstains.",
        "pattern_raft": "Pattern: RAFT. With sources required and {labelled} labelled "
        "examples, train the model to answer from retrieved passages and ignore "
        "distractors, then use it in the serial pipeline.",
        "pattern_serial": "Pattern: serial. Retrieve, then the fine-tuned model writes the "
        "answer from the sources.",
        "pattern_parallel": "Pattern: parallel. The fine-tuned model drafts while retrieval "
        "runs, so the latency is the longer of the two.",
        "pattern_fastest": "No pattern fits {latency_ms} ms; the fastest is chosen.",
        "measured_too_slow": "Measured: {arm} takes {p95_ms} ms at p95, over the budget of "
        "{latency_ms} ms.",
        "measured_no_sources": "Measured: {arm} answers without sources, which are required.",
        "measured_ungrounded": "Measured: {arm}'s groundedness {grounded} is well below "
        "RAG's {rag_grounded}.",
        "measured_none_eligible": "Measured: no arm meets the constraints; the questionnaire "
        "decides.",
        "measured_option_missing": "Measured: the report has no arm for {option}; the best "
        "measured is {best} ({metric} {best_value}). Add the arm to `ragtune compare`.",
        "measured_agrees": "Measured: {best} scores best ({metric} {best_value}; closed-book "
        "base {baseline}), as the questionnaire says.",
        "measured_outranks": "Measured: {best} beats {mine} on {metric} ({best_value} vs "
        "{mine_value}, difference {d} [{lo}, {hi}], 95% paired bootstrap): the measurement "
        "outranks the questionnaire.",
        "measured_tie": "Measured: {best} scores {best_value} and {mine} {mine_value} on "
        "{metric}, but the interval of the difference [{lo}, {hi}] includes zero: the "
        "questionnaire's choice stands.",
        # roadmap
        "step_rag": "Build the knowledge base and answer with RAG",
        "step_collect": "Collect questions with answers and hold some out for testing",
        "step_finetune": "Fine-tune a LoRA adapter on the labelled data",
        "step_combine_serial": "Combine: serial pipeline with the adapter",
        "step_combine_parallel": "Combine: parallel pipeline with the adapter",
        "step_combine_layered": "Combine: train the router, answer with the layered pipeline",
        "step_combine_raft": "Combine: build RAFT data, train on it, answer serially",
        "step_measure": "Measure every arm head-to-head and ask again",
    },
    "zh": {
        "rag": "RAG（检索增强生成）", "finetune": "微调", "combination": "组合方案",
        "serial": "串行", "parallel": "并行", "layered": "分层", "raft": "RAFT",
        "title": "建议", "start": "先从这里开始", "why": "理由", "assumed": "假设（未提供）",
        "conflicts": "冲突", "costs": "成本估算（{currency}）", "roadmap": "路线图",
        "next": "下一步", "done": "已完成", "initial": "初始", "monthly": "每月",
        "maintenance": "每年维护", "latency": "延迟", "per_1k": "每千次查询",
        "measured": "实测", "break_even": "盈亏平衡：每月查询量超过 {v} 时，微调的训练成本可以收回。",
        "break_even_never": "盈亏平衡：微调的单次查询成本并不更低，查询量再大也收不回训练成本。",
        "questionnaire": "仅凭问卷会推荐{choice}；实测结果改变了建议。",
        "strength_3": "强", "strength_2": "中", "strength_1": "弱", "strength_0": "说明",
        "change_fast": "知识更新频率为{change}：微调模型每年约需重训 {retrains_per_year} 次才能跟上，"
        "而重新入库只需几分钟。",
        "change_monthly": "知识每月更新：如此频繁地重训成本很高；检索通过重新入库保持最新。",
        "change_quarterly": "知识每季度更新：检索可保持最新，每季度重训也可行。",
        "change_stable": "知识基本稳定（{change}）：可以写入模型权重，无需频繁重训。",
        "expertise_expert": "任务需要专家级推理和领域风格：微调让模型形成“本能”；检索只提供事实，不提供能力。",
        "expertise_mixed": "部分问题需要专业推理：微调让模型形成这种能力。",
        "expertise_mixed_lookups": "其余问题是事实查询：由检索作答。",
        "expertise_lookup": "问题以事实查询为主：检索可直接从文档作答，无需训练。",
        "sources_required": "回答必须给出来源（合规、审计）：只有检索能提供可追溯的引用，因此必须保留检索。",
        "sources_preferred": "最好能给出来源：检索提供引用。",
        "sources_not_needed": "回答无需引用来源：没有约束。",
        "volume_high": "每月 {queries_per_month} 次查询，高于盈亏平衡点 {break_even}：微调更短的提示词可以收回训练成本。",
        "volume_low": "每月 {queries_per_month} 次查询，低于盈亏平衡点 {break_even}：微调的训练成本收不回来。",
        "budget_no_finetune": "初始预算 {budget_initial} {currency} 低于微调的 {finetune_initial}：RAG（{rag_initial}）可行。",
        "budget_below_rag": "初始预算 {budget_initial} {currency} 甚至低于 RAG 的 {rag_initial}：从小规模开始（内置模型、一个知识库）。",
        "budget_monthly_tight": "每月预算 {budget_monthly} {currency} 低于 RAG 的运行成本（{rag_monthly}），但在微调（{finetune_monthly}）范围内。",
        "budget_monthly_below_all": "每月预算 {budget_monthly} {currency} 低于所有方案的运行成本：选最便宜的（本地模型，无服务器）。",
        "latency_none_fits": "延迟预算 {latency_ms} ms 甚至低于不检索的微调模型（{finetune_ms} ms）：换更小或更快的模型，并实测。",
        "latency_no_retrieval": "延迟预算 {latency_ms} ms 容不下检索（RAG 需 {rag_ms} ms，微调模型 {finetune_ms} ms）。",
        "latency_fits": "延迟预算 {latency_ms} ms 足够 RAG（{rag_ms} ms）。",
        "data_too_little": "只有 {labelled} 条标注数据：微调至少需要 {minimum} 条；先用 RAG，并从使用中收集问答。",
        "data_plenty": "{labelled} 条标注数据，足够微调。",
        "data_enough": "{labelled} 条标注数据可以微调（超过 {good} 条更好）。",
        "gpu_none": "没有 GPU：内置小模型的 LoRA 可在 CPU 上运行；更大的模型需要租用 GPU（计入微调成本）。",
        "gpu_yes": "有 GPU：可对更大的模型做 LoRA，或用 --qlora 做 QLoRA。",
        "overlap_high": "问题大量沿用文档措辞（{question_overlap} 的词出现在最佳段落中）：检索能找到答案。",
        "overlap_low": "问题与文档共用的词很少（{question_overlap}）：仅靠检索常会漏掉；微调（或重排序）有帮助。",
        "overlap_mid": "问题中 {question_overlap} 的词出现在最佳段落中。",
        "assume_change": "知识更新频率：未提供；成本表按每年重训 {assumed_retrains_per_year} 次计算。若每天或每周更新则更适合 RAG。",
        "assume_expertise": "专业程度：未提供；若需要专家推理或领域风格则更适合微调。",
        "assume_sources": "是否必须给出来源：未提供；若必须，则需保留检索。",
        "assume_queries_per_month": "查询量：未提供；成本按每月 {assumed} 次查询估算。",
        "assume_budget_initial": "初始预算：未提供；不因成本排除任何方案。",
        "assume_budget_monthly": "每月预算：未提供。",
        "assume_latency_ms": "延迟预算：未提供；假设所有方案都足够快。",
        "assume_labelled": "标注数据量：未提供；假设足够微调（至少 500 条）。",
        "assume_gpu": "GPU：未提供；如需训练，成本按租用 GPU 计算。",
        "conflict_sources_latency": "要求给出来源，但延迟预算容不下检索：合规优先于速度，保留检索并选择最快的组合方式。放宽预算或用 `ragtune compare` 实测。",
        "conflict_expertise_budget": "任务需要微调（权重 {finetune_weight}），但预算不允许：现在用带领域提示词的 RAG，预算允许时再微调。",
        "conflict_fresh_latency": "知识更新太快，不适合单独微调（权重 {rag_weight}），但检索超出延迟预算：选择检索并行运行的组合方式，或放宽预算。",
        "pattern_layered": "组合方式：分层。路由器把事实查询交给检索、把专业问题交给微调模型；裁判模型可回退或拒答。",
        "pattern_raft": "组合方式：RAFT。要求给出来源且有 {labelled} 条标注数据：训练模型依据检索段落作答并忽略干扰段落，再用于串行流程。",
        "pattern_serial": "组合方式：串行。先检索，再由微调模型依据来源作答。",
        "pattern_parallel": "组合方式：并行。微调模型起草的同时进行检索，延迟取两者中较长者。",
        "pattern_fastest": "没有组合方式能满足 {latency_ms} ms；选择最快的。",
        "measured_too_slow": "实测：{arm} 的 p95 延迟为 {p95_ms} ms，超出 {latency_ms} ms 的预算。",
        "measured_no_sources": "实测：{arm} 作答不给来源，而来源是必需的。",
        "measured_ungrounded": "实测：{arm} 的可溯源度 {grounded} 远低于 RAG 的 {rag_grounded}。",
        "measured_none_eligible": "实测：没有满足约束的方案；以问卷为准。",
        "measured_option_missing": "实测：报告中没有{option}的结果；实测最佳为 {best}（{metric} {best_value}）。请在 `ragtune compare` 中加入该方案。",
        "measured_agrees": "实测：{best} 得分最高（{metric} {best_value}；闭卷基座 {baseline}），与问卷结论一致。",
        "measured_outranks": "实测：{best} 在 {metric} 上优于 {mine}（{best_value} 对 {mine_value}，差值 {d} [{lo}, {hi}]，95% 配对自助法）：实测结果优先于问卷。",
        "measured_tie": "实测：{best} 的 {metric} 为 {best_value}，{mine} 为 {mine_value}，但差值区间 [{lo}, {hi}] 包含零：维持问卷的选择。",
        "step_rag": "建立知识库，用 RAG 作答",
        "step_collect": "收集带答案的问题，留出一部分用于测试",
        "step_finetune": "用标注数据微调 LoRA 适配器",
        "step_combine_serial": "组合：使用适配器的串行流程",
        "step_combine_parallel": "组合：使用适配器的并行流程",
        "step_combine_layered": "组合：训练路由器，用分层流程作答",
        "step_combine_raft": "组合：构建 RAFT 数据并训练，串行作答",
        "step_measure": "所有方案同台对比，然后再次咨询",
    },
}

CHANGE_WORDS = {"zh": {"hourly": "每小时", "daily": "每天", "weekly": "每周", "monthly": "每月",
                       "quarterly": "每季度", "yearly": "每年", "static": "不变"}}


def _pad(text: str, width: int, right: bool = False) -> str:
    """Pad to a display width: CJK characters take two columns in a terminal."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    fill = " " * max(0, width - used)
    return fill + text if right else text + fill


def _number(x: float) -> str:
    if math.isinf(x):
        return "∞"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _display(key: str, value: Any, lang: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if key == "question_overlap":
        return f"{value:.0%}"
    if isinstance(value, int | float):
        return _number(float(value))
    if isinstance(value, tuple | list) and len(value) == 2 and all(
            isinstance(v, int | float) for v in value):
        if value[0] == value[1]:
            return _number(value[0])
        return f"{_number(value[0])}-{_number(value[1])}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if key == "change":
        return CHANGE_WORDS.get(lang, {}).get(str(value), str(value))
    if key == "option":
        return MESSAGES[lang].get(str(value), str(value))
    return str(value)


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ConfigError(f"unknown language {lang!r}; choose from {', '.join(LANGS)}")
    return lang


def explain(reason: Reason, lang: str = "en") -> str:
    """The reason in words, its evidence filled in."""
    values = {k: _display(k, v, lang) for k, v in reason.evidence.items()}
    diff = reason.evidence.get("difference")
    if isinstance(diff, dict):
        values.update(d=f"{diff['diff']:+.3f}", lo=f"{diff['low']:+.3f}",
                      hi=f"{diff['high']:+.3f}")
    else:
        values.update(d="-", lo="-", hi="-")
    return MESSAGES[lang][reason.code].format_map(_Missing(values))


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "-"


def choice(advice: Advice | tuple[str, str | None], lang: str = "en") -> str:
    option, pattern = ((advice.recommendation, advice.pattern) if isinstance(advice, Advice)
                       else advice)
    m = MESSAGES[lang]
    if option == "combination" and pattern:
        return f"{m['combination']} ({m[pattern]})" if lang == "en" else \
            f"{m['combination']}（{m[pattern]}）"
    return m[option]


def render(advice: Advice, lang: str = "en") -> str:
    """The whole advice as text for a terminal."""
    m = MESSAGES[check_lang(lang)]
    lines = [f"{m['title']}: {choice(advice, lang)}"]
    if advice.start_with != advice.recommendation:
        lines.append(f"{m['start']}: {m[advice.start_with]}")
    if advice.questionnaire:
        lines.append(m["questionnaire"].format(choice=choice(advice.questionnaire, lang)))
    lines += ["", f"{m['why']}:"]
    for r in advice.reasons:
        tag = m[f"strength_{r.weight}"] + (f", {m['measured']}" if r.measured else "")
        lines.append(f"  - [{tag}] {explain(r, lang)}")
    for title, items in ((m["conflicts"], advice.conflicts), (m["assumed"], advice.assumptions)):
        if items:
            lines += ["", f"{title}:"] + [f"  - {explain(r, lang)}" for r in items]
    cur = advice.costs.currency
    lines += ["", m["costs"].format(currency=cur) + ":"]
    widths = (22, 18, 18, 20, 16, 12)
    heads = ("", m["initial"], m["monthly"], m["maintenance"], m["per_1k"], m["latency"])
    lines.append("  " + "".join(_pad(h, w, i > 0) for i, (h, w) in
                                enumerate(zip(heads, widths, strict=True))))
    for option, e in advice.estimates.items():
        name = choice((option, advice.pattern), lang) if option == "combination" else m[option]
        cells = (name, _display("", e.initial, lang), _display("", e.monthly, lang),
                 _display("", e.maintenance_per_year, lang),
                 f"{e.per_query * 1000:.2f}" + ("*" if e.measured else ""),
                 f"{_number(e.latency_ms)} ms" + ("*" if e.measured else ""))
        lines.append("  " + "".join(_pad(c, w, i > 0) for i, (c, w) in
                                    enumerate(zip(cells, widths, strict=True))))
    if any(e.measured for e in advice.estimates.values()):
        lines.append(f"  * {m['measured']}")
    lines.append("  " + (m["break_even"].format(v=_number(advice.break_even))
                         if not math.isinf(advice.break_even) else m["break_even_never"]))
    lines += ["", f"{m['roadmap']}:"]
    first = True
    for i, step in enumerate(advice.roadmap, 1):
        mark = f" ({m['done']})" if step.done else ""
        if not step.done and first:
            mark, first = f"  <- {m['next']}", False
        lines.append(f"  {i}. {m[step.code]}{mark}")
        if not step.done:
            lines += [f"       {c}" for c in step.commands]
    return "\n".join(lines)
