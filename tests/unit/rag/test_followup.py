"""Follow-up questions rewritten into standalone ones: the rules, then the generator."""

import pytest

from ragtune.rag.followup import Conversation, rewrite
from ragtune.testing import FakeGenerator
from ragtune.types import Answer, Completion

FIRST = "What were Apple's total net sales for the three months ended June 25, 2022?"


@pytest.mark.parametrize("asked, expected, rule", [
    ("And for the nine months ended June 25, 2022?",
     "What were Apple's total net sales for the nine months ended June 25, 2022?", "ellipsis"),
    ("What about Microsoft?",
     "What were Microsoft's total net sales for the three months ended June 25, 2022?",
     "ellipsis"),
    ("How about services net sales?",
     "What were Apple's services net sales for the three months ended June 25, 2022?",
     "ellipsis"),
    ("And the same quarter a year ago?",
     "What were Apple's total net sales for the same quarter a year ago (the three months "
     "ended June 25, 2022)?", "ellipsis"),
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
