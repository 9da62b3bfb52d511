"""A follow-up question rewritten into one that stands alone, before retrieval.

"And for the nine months?" after "What were Apple's total net sales for the three months
ended June 25, 2022?" finds nothing as it stands: it names neither the company nor the
figure. Rules decide first, on the previous standalone question of the conversation:

- ``standalone``: no pronoun and no fragment: the question is kept as written;
- ``ellipsis``: a fragment ("And the nine months ended June 25, 2022?", "What about
  Microsoft?", "How about services revenue?") replaces the part of the previous question of
  its kind: the period, the company, or else the figure asked about;
- ``pronoun``: "it", "its", "they", "their", "the company" become the company of the
  previous question, and "the same period" ("that quarter") its period.

Where the rules do not decide (a pronoun with no company before it, a fragment of no kind
they know), the generator rewrites the question (``generator``); without one it is kept.

A question in Chinese follows the same three rules with Chinese words (:func:`_rewrite_zh`):
"那上个季度呢？" and "那毛利呢？" are fragments (ending in 呢); "它", "其", "这家公司",
"该公司" are the company and "同期", "该季度" the period. A Chinese fragment is a period, a
company (a Latin name, or one ending in 公司 or 集团) or a figure (ending in a figure's
word such as 收入, 利润, 费用, see ``_ZH_FIGURE_END``); anything else is for the generator.

Example:
    >>> first = "What were Apple's total net sales for the three months ended June 25, 2022?"
    >>> rewrite("And for the nine months ended June 25, 2022?", [first]).question
    "What were Apple's total net sales for the nine months ended June 25, 2022?"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ragtune.models.protocol import Generator
from ragtune.types import Answer

__all__ = ["RULES", "Conversation", "Rewrite", "Turn", "rewrite"]

RULES = ("first", "standalone", "ellipsis", "pronoun", "generator", "kept")

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|"
          r"November|December)")
_DATE = rf"{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}"
_SPAN = r"((?:three|six|nine|twelve|3|6|9|12)\s+months)"
_PERIOD = re.compile(
    rf"(?:(?:the|its|their)\s+)?(?:(?:three|six|nine|twelve|3|6|9|12)\s+months|quarter|"
    rf"(?:fiscal\s+)?(?:year|quarter|half))(?:\s+(?:ended|ending)\s+{_DATE})?|"
    rf"(?:the\s+)?(?:quarter|period|year)\s+(?:ended|ending)\s+{_DATE}|"
    rf"(?:the\s+)?(?:first|second|third|fourth)\s+(?:fiscal\s+)?quarter(?:\s+of\s+\d{{4}})?|"
    rf"\bQ[1-4]\s*\d{{4}}|\b(?:fiscal\s+)?(?:19|20)\d\d\b|{_DATE}|"
    rf"(?:the\s+)?(?:prior|previous|preceding|same|next)\s+(?:quarter|year|period)"
    rf"(?:\s+(?:a|one)\s+year\s+(?:earlier|before))?|"
    rf"(?:the\s+)?(?:(?:same\s+)?(?:quarter|year|period|(?:three|six|nine)\s+months)\s+)?"
    rf"(?:a|one)\s+year\s+(?:earlier|before|ago)|the\s+(?:quarter|year)\s+before",
    re.I)
_FRAGMENT = re.compile(r"^\s*(?:and|but|also|so)?\s*(?:what|how)\s+about\s+|^\s*(?:and|also)"
                       r"\s+(?:for|in|at|of|on|during)?\s*|^\s*(?:same|ditto)\s+for\s+", re.I)
_QUESTION_START = re.compile(r"^\s*(?:what|how|which|who|when|where|why|did|does|do|is|are|"
                             r"was|were|can|could|should|will|would|has|have|had|list|give|"
                             r"show|tell|compare|explain|describe|summari[sz]e)\b", re.I)
_PRONOUN = re.compile(r"\b(?:its|it|they|their|them|the company|the firm|this company|"
                      r"that company)\b", re.I)
_SAME_PERIOD = re.compile(r"\b(?:the\s+)?(?:same|that|this)\s+(?:period|quarter|time)\b", re.I)
_POSSESSIVE = re.compile(r"\b([A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*)['’]s\b")
_NAME = re.compile(r"\b([A-Z][A-Za-z&.-]+(?:\s+[A-Z][A-Za-z&.-]+)*)\b")
_NOT_NAMES = {"What", "How", "Which", "Who", "When", "Where", "Why", "Did", "Does", "Do",
              "Is", "Are", "Was", "Were", "And", "The", "In", "For", "Q1", "Q2", "Q3", "Q4",
              "Form", "Item", "Part", "Total", "Net", "I"}
_FIGURE = re.compile(r"^(?P<ask>\s*(?:what|how\s+much|how\s+many)\s+(?:was|were|is|are|did|"
                     r"does|do)\s+)(?:(?P<owner>[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*['’]s)\s+)?"
                     r"(?P<figure>.+?)(?P<rest>\s+(?:for|in|during|over|at|of|as\s+of)\s+.*)?"
                     r"\?*\s*$", re.I)

_COUNT = re.compile(r"^(?P<ask>\s*how\s+(?:many|much)\s+)(?P<figure>.+?)(?P<rest>\s+(?:does|do|"
                    r"did|is|are|was|were|has|have|had)\b.*?)\?*\s*$", re.I)

# --- Chinese -----------------------------------------------------------------------------

_HAN = re.compile(r"[\u4e00-\u9fff]")
_ZH_DATE = r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
_ZH_SPAN = r"前?(?:三|六|九|十二|3|6|9|12)个月"
_ZH_RELATIVE = r"上一?个?季度|前一个?季度|去年同期|上年同期|一年前|前一年|上一年"
_ZH_PERIOD = re.compile(
    rf"(?:截至|截止)?{_ZH_DATE}止?的?(?:{_ZH_SPAN}|季度|财年|年度)?|"
    rf"(?:\d{{4}}\s*财?年度?)?第[一二三四1-4](?:财季|季度)|{_ZH_SPAN}|{_ZH_RELATIVE}|"
    rf"\d{{4}}\s*财?年度?")
_ZH_FRAGMENT = re.compile(r"^\s*(?:那么?|还有|另外|而)?\s*(?P<rest>.+?)\s*(?:呢|怎么样|如何)"
                          r"\s*[？?]?\s*$")
_ZH_PRONOUN = re.compile(r"这家公司|该公司|这个公司|那家公司|它们|它|他们|其")
_ZH_SAME_PERIOD = re.compile(r"同期|同一时期|同一季度|那个季度|该季度|这个季度|那个时期|该期间")
_ZH_COMPANY = re.compile(r"[\u4e00-\u9fffA-Za-z]{1,8}?(?:公司|集团)")
_ZH_ASK = re.compile(r"(?:是|为|有)?多少|是什么|有哪些")
# the last word of a figure: 收入 (revenue), 利润 (profit), 费用 (expense), 销售额 (sales) ...
_ZH_FIGURE_END = re.compile(r"(?:收入|营收|利润|毛利|毛利率|净利|销售额|支出|费用|成本|收益|"
                            r"现金流|资产|负债|权益|每股收益|利润率|额|率)$")


def _shifted_zh(period: str, fragment: str) -> str:
    """As :func:`_shifted`: 去年同期 of 截至2022年6月25日的三个月 is 2021年同期."""
    date = re.search(r"(\d{4})\s*年", period)
    if date is None or not _A_YEAR.search(fragment):
        return f"相对于{period}"
    return f"{int(date.group(1)) - 1}年同期"


def _zh_period(question: str) -> re.Match[str] | None:
    found = list(_ZH_PERIOD.finditer(question))
    return max(found, key=lambda m: len(m.group()), default=None) or _period(question)


def _zh_company(question: str) -> str | None:
    """A Chinese question's company: a Latin name ("Apple"), one ending in 公司 or 集团
    (苹果公司), or the words the question opens with, before its period or "的"."""
    latin = _company(question)
    if latin is not None:
        return latin
    plain = _ZH_PERIOD.sub("，", question)
    named = [m.group() for m in _ZH_COMPANY.finditer(plain)
             if not _ZH_PRONOUN.fullmatch(m.group())]
    if named:
        return named[0]
    lead = re.match(r"^\s*([\u4e00-\u9fff]{2,8}?)(?:在|的|，)", plain)
    if lead and not _ZH_PRONOUN.search(lead.group(1)) and not _ZH_ASK.search(lead.group(1)):
        return lead.group(1)
    return None


def _zh_ellipsis(fragment: str, previous: str) -> str | None:
    fragment = fragment.strip().rstrip("？?。").strip()
    if not fragment:
        return None
    old = _zh_period(previous)
    if _ZH_PERIOD.fullmatch(fragment) or _PERIOD.fullmatch(fragment):
        if old is None:
            return f"{fragment}，{previous}"
        if re.fullmatch(_ZH_RELATIVE, fragment):
            new = f"{fragment}（{_shifted_zh(old.group(), fragment)}）"
        elif re.fullmatch(_ZH_SPAN, fragment) and re.search(_ZH_SPAN, old.group()):
            new = re.sub(_ZH_SPAN, fragment, old.group())  # 九个月: the same date, 9 months
        else:
            new = fragment
        return previous[:old.start()] + new + previous[old.end():]
    company = _zh_company(previous)
    if _ZH_COMPANY.fullmatch(fragment) or _is_name(fragment):
        if company is None:
            return None
        return previous.replace(company, fragment, 1)
    ask = _ZH_ASK.search(previous)
    fragment = re.sub(rf"^(?:{_ZH_PRONOUN.pattern})的?", "", fragment)  # 它的毛利: the owner
    if _ZH_FIGURE_END.search(fragment) and ask is not None:
        # the figure is what stands between the company or period and the question word
        starts = [m.end() for m in (old,) if m is not None and m.end() <= ask.start()]
        if company is not None and company in previous[:ask.start()]:
            starts.append(previous.index(company) + len(company))
        start = max(starts, default=0)
        start += previous[start:].startswith("的")
        return previous[:start] + fragment + previous[ask.start():]
    return None


def _zh_pronoun(question: str, previous: str) -> str | None:
    company = _zh_company(previous)
    if company is None:
        return None
    out = _ZH_PRONOUN.sub(company, question)
    if company not in out:  # "同期的研发费用是多少？": the company asked about before
        out = company + out.lstrip()
    period = _zh_period(previous)
    if period is not None:
        out = _ZH_SAME_PERIOD.sub(period.group(), out)
        if _zh_period(out) is None:  # no period of its own: the one asked about before
            out = f"{period.group()}，{out.lstrip()}"
    return out


def _rewrite_zh(asked: str, previous: str) -> tuple[str, str] | None:
    """``(question, rule)`` for a Chinese follow-up, or None where the rules do not decide."""
    fragment = _ZH_FRAGMENT.match(asked)
    if fragment and not _ZH_ASK.search(fragment.group("rest")):
        made = _zh_ellipsis(fragment.group("rest"), previous)
        return (made, "ellipsis") if made else None
    if _ZH_PRONOUN.search(asked) or _ZH_SAME_PERIOD.search(asked):
        made = _zh_pronoun(asked, previous)
        return (made, "pronoun") if made else None
    return (asked, "standalone")


_SYSTEM = ("Rewrite the user's last question so that it can be understood without the "
           "conversation: name the company, the figure and the period it refers to. Reply "
           "with the rewritten question only.")


@dataclass(frozen=True)
class Rewrite:
    """The question to retrieve with, the question as asked, and which rule made it
    (one of :data:`RULES`)."""

    question: str
    asked: str
    rule: str

    @property
    def changed(self) -> bool:
        return self.question != self.asked


_DATED = re.compile(rf"{_MONTH}\s+\d{{1,2}},?\s+(\d{{4}})")
_A_YEAR = re.compile(r"\byear\b|同期|年前|前一年|上一年", re.I)


def _shifted(period: str, fragment: str) -> str:
    """The period a relative fragment means, where the rules can say it: "a year earlier"
    than "the three months ended June 25, 2022" is "the three months ended in 2021" (only
    the year: a fiscal quarter's last day moves from year to year, May 1 one year and April
    30 the next). Otherwise the period it is relative to, as it was asked."""
    date = _DATED.search(period)
    if date is None or not _A_YEAR.search(fragment):
        return period
    return f"{period[:date.start()]}in {int(date.group(1)) - 1}{period[date.end():]}"


def _company(question: str) -> str | None:
    """The company a question is about: its possessive name ("Apple's"), else the last
    capitalised name that is not a question word or a period."""
    match = _POSSESSIVE.search(question)
    if match and match.group(1).split()[0] not in _NOT_NAMES:
        return match.group(1)
    names = [m.group(1) for m in _NAME.finditer(question)
             if m.group(1).split()[0] not in _NOT_NAMES and not _PERIOD.fullmatch(m.group(1))
             and not re.fullmatch(_MONTH, m.group(1).split()[0])]
    return names[-1] if names else None


def _period(question: str) -> re.Match[str] | None:
    """The longest period phrase of a question."""
    found = list(_PERIOD.finditer(question))
    return max(found, key=lambda m: len(m.group()), default=None)


def _is_name(fragment: str) -> bool:
    words = fragment.split()
    return bool(words) and len(words) <= 4 and all(w[:1].isupper() for w in words) and \
        words[0] not in _NOT_NAMES


def _ellipsis(fragment: str, previous: str) -> str | None:
    fragment = fragment.strip().rstrip("?.!").strip()
    if not fragment:
        return None
    period, old = _PERIOD.fullmatch(re.sub(r"^(?:the\s+)", "", fragment, flags=re.I)), \
        _period(previous)
    if period or _PERIOD.fullmatch(fragment):
        if old is None:
            return f"{previous.rstrip(' ?')} for {fragment}?"
        relative = re.search(r"\b(?:prior|previous|preceding|before|earlier|ago|next)\b",
                             fragment, re.I)
        span = re.fullmatch(rf"(?:the\s+)?{_SPAN}", fragment, re.I)
        if relative:
            new = f"{fragment} ({_shifted(old.group(), fragment)})"
        elif span and re.search(_SPAN, old.group(), re.I):  # "the nine months": same date
            new = re.sub(_SPAN, span.group(1), old.group(), flags=re.I)
        else:
            new = fragment
        return previous[:old.start()] + new + previous[old.end():]
    if _is_name(fragment):
        company = _company(previous)
        if company is None:
            return None
        return re.sub(rf"\b{re.escape(company)}\b", fragment, previous, count=1)
    count = _COUNT.match(previous)
    if count is not None:  # "How many vacation days does ..." → "How many sick days does ..."
        figure = re.sub(r"^(?:the\s+)?(?:number\s+of\s+)?", "", fragment, flags=re.I)
        return f"{count.group('ask')}{figure}{count.group('rest')}?"
    asked = _FIGURE.match(previous)
    if asked is None:
        return None
    # "And its diluted earnings per share?": the owner comes from the previous question
    fragment = re.sub(r"^(?:its|their|the company['’]s)\s+", "", fragment, flags=re.I)
    owner = f"{asked.group('owner')} " if asked.group("owner") else ""
    rest = (asked.group("rest") or "").rstrip("?")
    return f"{asked.group('ask')}{owner}{fragment}{rest}?"


def _pronoun(question: str, previous: str) -> str | None:
    company = _company(previous)
    if company is None:
        return None
    period = _period(previous)

    def name(match: re.Match[str]) -> str:
        word = match.group().lower()
        return f"{company}'s" if word in ("its", "their") else company

    out = _PRONOUN.sub(name, question)
    if period is not None:
        out = _SAME_PERIOD.sub(period.group(), out)
        if _period(out) is None:  # no period of its own: the one asked about before
            out = f"{out.rstrip(' ?')} in {period.group()}?"
    return out


def _generated(question: str, history: Sequence[str], generator: Generator) -> str | None:
    turns = "\n".join(f"Earlier question: {q}" for q in history[-3:])
    completion = generator.generate(
        [{"role": "system", "content": _SYSTEM},
         {"role": "user", "content": f"{turns}\nLast question: {question}\nRewritten:"}],
        max_tokens=64, temperature=0.0)
    text = completion.text.strip().splitlines()[0].strip().strip('"') if \
        completion.text.strip() else ""
    # a rewrite is a question; anything else (an answer, a refusal) is not used
    return text if text.endswith(("?", "？")) or _QUESTION_START.match(text) else None


def rewrite(question: str, history: Sequence[str], generator: Generator | None = None,
            ) -> Rewrite:
    """``question`` as a standalone question, given the standalone forms of the
    conversation's earlier questions (``history``, oldest first)."""
    asked = question.strip()
    if not history:
        return Rewrite(asked, asked, "first")
    previous = history[-1]
    if _HAN.search(asked):
        zh = _rewrite_zh(asked, previous)
        if zh is None:
            return _fallback(asked, history, generator)
        return Rewrite(zh[0], asked, zh[1])
    fragment = _FRAGMENT.match(asked)
    short = len(asked.split()) <= 6 and not _QUESTION_START.match(asked)
    if fragment or short:
        rest = asked[fragment.end():] if fragment else asked
        if fragment and _QUESTION_START.match(rest):  # "And what was its net income?"
            asked_rest = rest
        else:
            made = _ellipsis(rest, previous)
            if made:
                return Rewrite(made, asked, "ellipsis")
            asked_rest = None
        if asked_rest is None:
            return _fallback(asked, history, generator)
    if _PRONOUN.search(asked) or _SAME_PERIOD.search(asked):
        made = _pronoun(asked, previous)
        if made:
            return Rewrite(made, asked, "pronoun")
        return _fallback(asked, history, generator)
    return Rewrite(asked, asked, "standalone")


def _fallback(asked: str, history: Sequence[str], generator: Generator | None) -> Rewrite:
    if generator is not None:
        made = _generated(asked, history, generator)
        if made:
            return Rewrite(made, asked, "generator")
    return Rewrite(asked, asked, "kept")


@dataclass(frozen=True)
class Turn:
    """One question of a conversation: how it was read, and its answer with citations."""

    rewrite: Rewrite
    answer: Answer


@dataclass
class Conversation:
    """Questions asked one after another, each read as a follow-up of those before.

    ``answer`` answers a standalone question (``KnowledgeBase.ask``); ``generator``
    rewrites where the rules do not decide. Every turn keeps its own answer and citations.

    Example:
        >>> chat = Conversation(kb.ask, kb.generator)  # doctest: +SKIP
        >>> chat.ask("And for the nine months?").rewrite.question  # doctest: +SKIP
    """

    answer: Callable[[str], Answer]
    generator: Generator | None = None
    turns: list[Turn] = field(default_factory=list)

    def ask(self, question: str) -> Turn:
        history = [t.rewrite.question for t in self.turns]
        read = rewrite(question, history, self.generator)
        turn = Turn(read, self.answer(read.question))
        self.turns.append(turn)
        return turn
