import json

import httpx
import pytest

from ragtune.errors import ConfigError, GenerationError
from ragtune.models.openai_generator import OpenAIGenerator, estimate_tokens
from ragtune.testing.contracts import check_generator


def server(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    assert request.url.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer k"
    text = "Paris is the capital."
    words = text.split(" ")[: body["max_tokens"]]
    if body["stream"]:
        events = [f"data: {json.dumps({'choices': [{'delta': {'content': w + ' '}}]})}\n\n"
                  for w in words] + ["data: [DONE]\n\n"]
        return httpx.Response(200, text="".join(events),
                              headers={"content-type": "text/event-stream"})
    return httpx.Response(200, json={
        "choices": [{"message": {"role": "assistant", "content": " ".join(words)},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 17, "completion_tokens": len(words)}})


def make(handler=server):
    return OpenAIGenerator("http://test/v1", "m", api_key="k",
                           transport=httpx.MockTransport(handler))


def test_openai_generator_passes_the_contract():
    check_generator(make())


def test_usage_is_reported():
    out = make().generate([{"role": "user", "content": "Capital of France?"}], max_tokens=10)
    assert out.text == "Paris is the capital." and out.prompt_tokens == 17


def test_http_errors_are_clear():
    gen = make(lambda r: httpx.Response(401, json={"error": "bad key"}))
    with pytest.raises(GenerationError, match="HTTP 401.*bad key"):
        gen.generate([{"role": "user", "content": "x"}], max_tokens=5)

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(GenerationError, match="is the server running"):
        make(refuse).generate([{"role": "user", "content": "x"}], max_tokens=5)
    with pytest.raises(GenerationError, match="did not return an OpenAI chat completion"):
        make(lambda r: httpx.Response(200, text="<html>")).generate(
            [{"role": "user", "content": "x"}], max_tokens=5)


def test_needs_a_base_url():
    with pytest.raises(ConfigError, match="--base-url"):
        OpenAIGenerator("", "m")


def test_token_estimate_counts_cjk_per_character():
    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("abcdefgh") == 2
