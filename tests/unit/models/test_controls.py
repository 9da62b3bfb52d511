"""Stop sequences: whole answers and streamed pieces end at the same place."""

from __future__ import annotations

import pytest

from ragtune.models.controls import cut_at_stop, until_stop

STOPS = ["\nQuestion:", "\n问题："]


@pytest.mark.parametrize("text", [
    "Paris [1]\nQuestion: and Rome?",
    "Paris [1]",
    "Paris\nQues",  # a stop sequence begun but never finished is text
    "\nQuestion: at once",
    "巴黎 [1]\n问题：罗马呢？",
])
def test_streamed_pieces_join_to_the_cut_answer(text: str) -> None:
    expected, _ = cut_at_stop(text, STOPS)
    for size in (1, 2, 5):
        pieces = [text[i:i + size] for i in range(0, len(text), size)]
        assert "".join(until_stop(iter(pieces), STOPS)) == expected


def test_cut_at_stop_takes_the_earliest_and_says_whether_it_cut() -> None:
    assert cut_at_stop("a\n问题：b\nQuestion: c", STOPS) == ("a", True)
    assert cut_at_stop("no stop here", STOPS) == ("no stop here", False)
    assert cut_at_stop("no stops given", []) == ("no stops given", False)


def test_streaming_stops_reading_at_the_stop_sequence() -> None:
    read = []

    def pieces():  # type: ignore[no-untyped-def]
        for piece in ["Paris", " [1]", "\nQuestion:", " more", " and more"]:
            read.append(piece)
            yield piece

    assert "".join(until_stop(pieces(), STOPS)) == "Paris [1]"
    assert read == ["Paris", " [1]", "\nQuestion:"]  # generation ends with the stream


def test_a_grounded_answer_ends_at_its_first_marker_streamed_or_whole() -> None:
    from ragtune.models.controls import cut_after_marker, until_marker

    text = "run `ragtune models install --all` [1]. [2] models.md (Models) more text"
    assert cut_after_marker(text) == ("run `ragtune models install --all` [1]", True)
    assert cut_after_marker("no marker here") == ("no marker here", False)
    assert cut_after_marker("both [1, 2] then") == ("both [1, 2]", True)
    for size in (1, 3, 7):
        pieces = [text[i:i + size] for i in range(0, len(text), size)]
        assert "".join(until_marker(iter(pieces))) == cut_after_marker(text)[0]
