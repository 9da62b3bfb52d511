"""The questionnaire: the article's five questions, plus labelled data and GPU, in two languages.

:func:`ask_missing` asks only what the profile does not know yet, through an ``ask`` callable
(the CLI passes ``typer.prompt``), and re-asks after an answer it cannot read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ragtune.advise.profile import CHOICES, Profile
from ragtune.errors import ConfigError


@dataclass(frozen=True)
class Question:
    field: str
    text: dict[str, str]
    choices: tuple[str, ...] = ()  # empty: a number (or yes/no for gpu)


QUESTIONS = (
    Question("change", {
        "en": "1. How often does the knowledge change?",
        "zh": "1. 知识多久更新一次？"}, CHOICES["change"]),
    Question("expertise", {
        "en": "2. What does the task need: facts looked up (lookup), expert reasoning and a "
              "domain style (expert), or both (mixed)?",
        "zh": "2. 任务需要什么：查询事实（lookup）、专家推理和领域风格（expert），"
              "还是两者都有（mixed）？"},
        CHOICES["expertise"]),
    Question("sources", {
        "en": "3. Must answers show their sources (compliance, audit)?",
        "zh": "3. 回答是否必须给出来源（合规、审计）？"}, CHOICES["sources"]),
    Question("queries_per_month", {
        "en": "4a. Query volume: how many queries a month?",
        "zh": "4a. 查询量：每月多少次查询？"}),
    Question("budget_initial", {
        "en": "4b. Initial budget (in the cost model's currency, 0 if none set)?",
        "zh": "4b. 初始预算（按成本模型的货币计，未定则填 0）？"}),
    Question("latency_ms", {
        "en": "5. Latency budget per request, in milliseconds?",
        "zh": "5. 每次请求的延迟预算（毫秒）？"}),
    Question("labelled", {
        "en": "6. How many labelled examples (questions with answers, instructions with "
              "outputs) do you have?",
        "zh": "6. 有多少条标注数据（带答案的问题、带输出的指令）？"}),
    Question("gpu", {
        "en": "7. Is a GPU available for training (yes/no)?",
        "zh": "7. 是否有 GPU 可用于训练（是/否）？"}),
)


def ask_missing(profile: Profile, ask: Callable[[str], str], lang: str = "en",
                tell: Callable[[str], None] = print) -> Profile:
    """Ask each question whose field is unknown; an empty answer leaves it unknown."""
    answers: dict[str, object] = {}
    for q in QUESTIONS:
        if getattr(profile, q.field) is not None:
            continue
        prompt = q.text[lang] + (f" [{'/'.join(q.choices)}]" if q.choices else "")
        while True:
            answer = ask(prompt).strip()
            if not answer:
                break
            try:
                Profile.from_mapping({q.field: answer}, where="answer")
            except ConfigError as exc:
                tell(str(exc))
                continue
            answers[q.field] = answer
            break
    return profile.merged(Profile.from_mapping(answers, where="answer"))
