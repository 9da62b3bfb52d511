"""``/v1/chat/completions`` with a conversation: the last question read as a follow-up."""

from tests.serve.test_api import events


def chat(client, *turns, stream=False):
    messages = []
    for n, text in enumerate(turns):
        messages.append({"role": "user" if n % 2 == 0 else "assistant", "content": text})
    return client.post("/v1/chat/completions",
                       json={"model": "rag", "messages": messages, "stream": stream})


def test_a_follow_up_is_searched_as_a_standalone_question(client):
    r = chat(client, "How many vacation days does an employee of Acme get per year?",
             "Every employee receives 25 days of paid vacation per year. [1]",
             "What about sick days?")
    assert r.status_code == 200, r.text
    data = r.json()
    rewrite = data["ragtune"]["rewrite"]
    assert rewrite == {"asked": "What about sick days?", "rule": "ellipsis",
                       "question": "How many sick days does an employee of Acme get per "
                                   "year?"}
    assert data["ragtune"]["question"] == rewrite["question"]
    assert data["citations"] and data["citations"][0]["name"] == "vacation.txt"


def test_a_pronoun_takes_the_company_of_the_question_before(client):
    r = chat(client, "When was the Eiffel Tower completed?", "In 1889. [1]",
             "How tall is it?")
    rewrite = r.json()["ragtune"]["rewrite"]
    assert (rewrite["rule"], rewrite["question"]) == ("pronoun",
                                                      "How tall is Eiffel Tower?")


def test_a_single_question_is_kept_and_said_so(client):
    r = chat(client, "When was the Eiffel Tower completed?")
    assert r.json()["ragtune"]["rewrite"]["rule"] == "first"


def test_the_stream_ends_with_the_rewritten_question(client):
    r = chat(client, "How many vacation days does an employee of Acme get per year?",
             "25 days. [1]", "And per month?", stream=True)
    last = [e for e in events(r) if e != "[DONE]"][-1]
    assert last["ragtune"]["rewrite"]["rule"] in ("ellipsis", "generator", "kept")
    assert last["ragtune"]["rewrite"]["asked"] == "And per month?"
    assert last["citations"] is not None
