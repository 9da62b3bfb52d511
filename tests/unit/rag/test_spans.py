"""A grounded span completed to the enumeration it begins, only where the question asks
for several things and the source goes on with the list."""

import pytest

from ragtune.rag.spans import asks_for_several, close_code, complete_list, complete_phrase

SOURCE = ("The file formats ragtune can ingest are plain text, Markdown, HTML, PDF, Word "
          "and JSON (`.txt`, `.md`). Text is cleaned first.")


@pytest.mark.parametrize("question", [
    "Which file formats can ragtune ingest?", "What countries border France?",
    "What are the colours of the flag?", "List the steps.", "Name the members.",
])
def test_questions_asking_for_several_things(question: str) -> None:
    assert asks_for_several(question)


@pytest.mark.parametrize("question", [
    "Who won the game?", "What was the address?", "What genus is it?",
    "Which class was it in?", "What does the compare command report?", "What is the name?",
])
def test_questions_asking_for_one_thing(question: str) -> None:
    assert not asks_for_several(question)


def test_the_first_item_becomes_the_whole_list_of_its_sentence() -> None:
    got = complete_list("plain text [1]", [SOURCE], "Which file formats can ragtune ingest?")
    assert got == "plain text, Markdown, HTML, PDF, Word and JSON [1]"


def test_a_list_cut_before_its_last_items_is_completed() -> None:
    got = complete_list("plain text, Markdown, HTML, PDF, Word [1]", [SOURCE],
                        "Which file formats can ragtune ingest?")
    assert got == "plain text, Markdown, HTML, PDF, Word and JSON [1]"
    # not from the middle of the list
    assert complete_list("Markdown, HTML [1]", [SOURCE], "Which formats?") == "Markdown, HTML [1]"


def test_the_cited_source_is_the_one_read() -> None:
    other = "Nothing about formats here: plain text is simple."
    question = "Which file formats can ragtune ingest?"
    assert complete_list("plain text [2]", [other, SOURCE], question).startswith(
        "plain text, Markdown")
    assert complete_list("plain text [1]", [other, SOURCE], question) == "plain text [1]"


@pytest.mark.parametrize("answer, question", [
    ("plain text [1]", "Who reads plain text?"),  # one thing asked
    ("Markdown [1]", "Which file formats can ragtune ingest?"),  # mid-list: not its start
    ("cleaned [1]", "Which steps come first?"),  # no list follows
    ("plain text", "Which file formats can ragtune ingest?"),  # no marker: not a grounded span
    ("plain text [3]", "Which file formats can ragtune ingest?"),  # no such source
    ("JSON files [1]", "Which file formats can ragtune ingest?"),  # not in the source
    ("plain text, Markdown and HTML [1]", "Which file formats can ragtune ingest?"),  # whole
])
def test_anything_else_is_left_as_it_is(answer: str, question: str) -> None:
    assert complete_list(answer, [SOURCE], question) == answer


COMMANDS = ("To install the bundled models, run `ragtune models install --all` (`make demo` "
            "runs it for you).")


def test_a_command_cut_inside_its_backticks_is_quoted_whole() -> None:
    assert close_code("run `ragtune models install [1]", [COMMANDS]) == \
        "run `ragtune models install --all` [1]"
    # the source cited is the one read
    assert close_code("run `ragtune models install [2]", ["other", COMMANDS]).endswith(
        "--all` [2]")


@pytest.mark.parametrize("answer", [
    "run `ragtune models install --all` [1]",  # closed already
    "`make demo` [1]",  # closed already
    "run `ragtune models install",  # no marker: not a grounded span
    "run `ragtune models install [2]",  # no such source
    "run `ragtune models uninstall [1]",  # not in the source
])
def test_a_closed_or_unknown_span_is_left_as_it_is(answer: str) -> None:
    assert close_code(answer, [COMMANDS]) == answer


def test_a_code_span_is_not_closed_across_lines() -> None:
    source = "Run `tool install\nand then` more."
    assert close_code("Run `tool install [1]", [source]) == "Run `tool install [1]"


KB_VERIFY = ("`ragtune kb verify` checks that the record of sources, the vector store and the "
             "lexical index agree, as readers see them.")


def test_a_span_cut_on_a_word_no_phrase_ends_on_gets_its_clause() -> None:
    assert complete_phrase("the record of sources, the vector store and the [1]",
                           [KB_VERIFY]) == (
        "the record of sources, the vector store and the lexical index agree [1]")
    # a word changed near its start ("check" for "checks"): its last words are found
    assert complete_phrase("check that the record of sources, the vector store and [1]",
                           [KB_VERIFY]) == ("check that the record of sources, the vector "
                                            "store and the lexical index agree [1]")
    cut = "the electrostatic force (due to the electric field) and [1]"
    source = ("It is the electrostatic force (due to the electric field) and the magnetic "
              "force.")
    assert complete_phrase(cut, [source]) == (
        "the electrostatic force (due to the electric field) and the magnetic force [1]")


@pytest.mark.parametrize("answer", [
    "the vector store [1]",  # ends on a noun
    "the vector store and the [2]",  # no such source
    "the index and the [1]",  # not in the source
    "the vector store and the",  # no marker
])
def test_a_whole_phrase_or_an_unknown_span_is_left_as_it_is(answer: str) -> None:
    assert complete_phrase(answer, [KB_VERIFY]) == answer
