"""The official ``openai`` client against a live server on 127.0.0.1 (fake models)."""

import openai
import pytest

from tests.serve.conftest import KEY


def client_for(live, key=KEY):
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


def test_completion_with_citations(live):
    response = client_for(live).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "How many days of vacation?"}])
    assert "25 days" in response.choices[0].message.content
    assert response.choices[0].finish_reason == "stop"
    citations = response.model_extra["citations"]
    assert citations[0]["name"] == "vacation.txt" and "paid vacation" in citations[0]["text"]
    assert response.usage.total_tokens > 0


def test_streamed_completion(live):
    stream = client_for(live).chat.completions.create(
        model="rag", stream=True,
        messages=[{"role": "user", "content": "When was the Eiffel Tower completed?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "1889" in text and len(chunks) > 3
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["name"] == "tower.md"


def test_model_list(live):
    assert [m.id for m in client_for(live).models.list()] == ["rag", "closed", "layered"]


def test_wrong_key_is_401(live):
    with pytest.raises(openai.AuthenticationError) as info:
        client_for(live, key="not-the-key").models.list()
    assert info.value.status_code == 401
    assert "API key" in info.value.body["message"]


def test_unknown_model_is_404(live):
    with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-4o'"):
        client_for(live).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
