"""Follow-up questions rewritten into standalone ones: the rules, then the generator."""

import pytest

from ragtune.rag.followup import Conversation, rewrite
from ragtune.testing import FakeGenerator
from ragtune.types import Answer, Completion

FIRST = "What were Apple's total net sales for the three months ended June 25, 2022?"


@pytest.mark.parametrize("asked, expected, rule", [
    ("And for the nine months ended June 25, 2022?",
     "What were Apple's total net sales for the nine months ended June 25, 2022?", "ellipsis"),
    ("And for the nine months?",  # a span alone keeps the date asked about
     "What were Apple's total net sales for the nine months ended June 25, 2022?", "ellipsis"),
    ("And its diluted earnings per share?",  # the owner comes from the question before
     "What were Apple's diluted earnings per share for the three months ended June 25, 2022?",
     "ellipsis"),
    ("What about Microsoft?",
     "What were Microsoft's total net sales for the three months ended June 25, 2022?",
     "ellipsis"),
    ("How about services net sales?",
     "What were Apple's services net sales for the three months ended June 25, 2022?",
     "ellipsis"),
    ("And the same quarter a year ago?",  # the year only: a fiscal quarter's last day moves
     "What were Apple's total net sales for the same quarter a year ago (the three months "
     "ended in 2021)?", "ellipsis"),
    ("And the previous quarter?",  # named relative to the period asked about
     "What were Apple's total net sales for the previous quarter (the three months ended "
     "June 25, 2022)?", "ellipsis"),
    ("What was its net income in the same period?",
     "What was Apple's net income in the three months ended June 25, 2022?", "pronoun"),
    ("How much did they spend on research and development?",
     "How much did Apple spend on research and development in the three months ended "
     "June 25, 2022?", "pronoun"),
    ("What was NVIDIA's revenue for the quarter ended April 30, 2023?",
     "What was NVIDIA's revenue for the quarter ended April 30, 2023?", "standalone"),
])
def test_rules(asked, expected, rule):
    read = rewrite(asked, [FIRST])
    assert (read.question, read.rule) == (expected, rule)
    assert read.asked == asked and read.changed == (rule != "standalone")


def test_first_question_is_kept():
    assert rewrite(FIRST, []).rule == "first"


class Scripted(FakeGenerator):
    def __init__(self, reply):
        super().__init__()
        self.reply, self.prompts = reply, []

    def generate(self, messages, *, max_tokens, temperature=0.0):
        self.prompts.append(messages)
        return Completion(self.reply, 10, 5)


def test_the_generator_decides_where_the_rules_do_not():
    # "it" with no company in the previous question: the rules cannot say what it is
    generator = Scripted("What is the warranty period of the X200 laptop?\nextra")
    read = rewrite("How long is it?", ["tell me about the x200 laptop warranty"], generator)
    assert read.rule == "generator"
    assert read.question == "What is the warranty period of the X200 laptop?"
    assert "x200 laptop warranty" in generator.prompts[0][-1]["content"]
    assert rewrite("How long is it?", ["tell me about the x200 laptop warranty"]).rule == "kept"


def test_conversation_keeps_each_turns_answer():
    asked = []

    def answer(question):
        asked.append(question)
        return Answer(question=question, text=f"answer {len(asked)}", citations=())

    chat = Conversation(answer)
    chat.ask(FIRST)
    turn = chat.ask("And for the nine months ended June 25, 2022?")
    assert asked[1] == turn.rewrite.question and "Apple's total net sales" in asked[1]
    assert [t.answer.text for t in chat.turns] == ["answer 1", "answer 2"]


ZH_FIRST = "苹果公司截至2022年6月25日的三个月总净销售额是多少？"


@pytest.mark.parametrize("asked, expected, rule", [
    ("那九个月呢？", "苹果公司截至2022年6月25日的九个月总净销售额是多少？", "ellipsis"),
    ("那上个季度呢？",
     "苹果公司上个季度（相对于截至2022年6月25日的三个月）总净销售额是多少？", "ellipsis"),
    ("那去年同期呢？", "苹果公司去年同期（2021年同期）总净销售额是多少？", "ellipsis"),
    ("那毛利呢？", "苹果公司截至2022年6月25日的三个月毛利是多少？", "ellipsis"),
    ("那微软公司呢？", "微软公司截至2022年6月25日的三个月总净销售额是多少？", "ellipsis"),
    ("它的研发支出是多少？", "截至2022年6月25日的三个月，苹果公司的研发支出是多少？",
     "pronoun"),
    ("这家公司在那个季度的净利润是多少？",
     "苹果公司在截至2022年6月25日的三个月的净利润是多少？", "pronoun"),
    ("同期的研发费用是多少？", "苹果公司截至2022年6月25日的三个月的研发费用是多少？",
     "pronoun"),
    ("英伟达截至2023年4月30日的季度收入是多少？", "英伟达截至2023年4月30日的季度收入是多少？",
     "standalone"),
])
def test_chinese_rules(asked, expected, rule):
    read = rewrite(asked, [ZH_FIRST])
    assert (read.question, read.rule) == (expected, rule)


def test_chinese_company_without_a_suffix_and_a_fragment_of_no_known_kind():
    first = "微软截至2023年3月31日的三个月总收入是多少？"
    assert rewrite("它的净利润是多少？", [first]).question == \
        "截至2023年3月31日的三个月，微软的净利润是多少？"
    # neither a period, a company nor a figure: the generator decides, else it is kept
    assert rewrite("那个东西呢？", [first]).rule == "kept"
    generator = Scripted("微软截至2023年3月31日的三个月的Xbox收入是多少？")
    assert rewrite("那个东西呢？", [first], generator).rule == "generator"
