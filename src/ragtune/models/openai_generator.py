"""A generator behind any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Works with vLLM, Ollama, llama.cpp's server, ragtune's own server and hosted APIs.

A LoRA adapter on such a server is chosen per request by the request's ``model``: vLLM
started with ``--enable-lora --lora-modules legal=DIR`` answers ``"model": "legal"`` with
the base model plus that adapter, and ``"model": BASE`` with the base alone. So a
generator built with an adapter sends the adapter's served name (:func:`served_name`)
instead of the base model's.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragtune.config import GeneratorSettings
from ragtune.errors import ConfigError, GenerationError
from ragtune.types import Completion, Message

EXPORT_RECORD = "ragtune-export.json"  # written by ``ragtune tune export``

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, one per ~4 other characters.

    Remote models do not expose their tokenizer; this errs on the high side for English
    BPE vocabularies so that packing does not overflow the window.
    """
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def served_name(adapter: str | Path) -> str:
    """The model name that selects ``adapter`` on an OpenAI-compatible server.

    An export folder of ``ragtune tune export`` carries its name (``--name``, default the
    run folder's name); another run or PEFT folder is named by its folder; anything else is
    taken as the name the server was given (``--lora-modules NAME=DIR``).
    """
    path = Path(adapter).expanduser()
    if path.is_dir():
        record = path / EXPORT_RECORD
        if record.exists():
            try:
                name = json.loads(record.read_text(encoding="utf-8")).get("name")
            except ValueError as exc:
                raise ConfigError(f"{record} is not valid JSON ({exc}): export the adapter "
                                  "again with `ragtune tune export RUN --out DIR`") from None
            if name:
                return str(name)
        return path.resolve().name
    return str(adapter)


class OpenAIGenerator:
    """Chat completions over HTTP.

    Example:
        >>> gen = OpenAIGenerator("http://127.0.0.1:8000/v1", "qwen2.5-7b")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        context_window: int = 8192,
        timeout_s: float = 120.0,
        transport: Any = None,
    ) -> None:
        import httpx

        if not base_url:
            raise ConfigError(
                "the openai generator needs a base URL: --base-url http://HOST:PORT/v1 "
                "(or generator.base_url in ragtune.toml, or RAGTUNE_GENERATOR_BASE_URL)"
            )
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.context_window = context_window
        key = api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: GeneratorSettings) -> OpenAIGenerator:
        """The generator of ``settings``; with an adapter (a name or an exported folder,
        not ``auto``/``none``) each request asks for that adapter instead of the base."""
        from ragtune.models.adapters import is_choice

        window = settings.context_window or settings.max_context
        model = settings.model if is_choice(settings.adapter) else served_name(
            str(settings.adapter))
        return cls(settings.base_url or "", model, api_key=settings.api_key,
                   context_window=window, timeout_s=settings.timeout_s)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        # 4 tokens of per-message overhead, as in OpenAI's chat format
        return sum(estimate_tokens(m["content"]) + 4 for m in messages) + 2

    def _body(self, messages: Sequence[Message], max_tokens: int, temperature: float,
              stream: bool) -> dict[str, Any]:
        return {"model": self.name, "messages": list(messages), "max_tokens": max_tokens,
                "temperature": temperature, "stream": stream}

    def _post(self, body: dict[str, Any]) -> Any:
        import httpx

        try:
            return self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise GenerationError(
                f"cannot reach {self.base_url}/chat/completions: {exc}; is the server running?"
            ) from exc

    @staticmethod
    def _check(response: Any, base_url: str) -> None:
        if response.status_code >= 400:
            raise GenerationError(
                f"{base_url}/chat/completions answered HTTP {response.status_code}: "
                f"{response.text[:500]}"
            )

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Completion:
        response = self._post(self._body(messages, max_tokens, temperature, False))
        self._check(response, self.base_url)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GenerationError(
                f"{self.base_url} did not return an OpenAI chat completion: {response.text[:300]}"
            ) from exc
        usage = data.get("usage") or {}
        return Completion(
            text=text.strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or self.count_tokens(messages)),
            completion_tokens=int(usage.get("completion_tokens") or estimate_tokens(text)),
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        import httpx

        body = self._body(messages, max_tokens, temperature, True)
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response, self.base_url)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        delta = json.loads(payload)["choices"][0].get("delta", {})
                    except (ValueError, KeyError, IndexError) as exc:
                        raise GenerationError(f"bad stream event from {self.base_url}: "
                                              f"{payload[:200]}") from exc
                    if delta.get("content"):
                        yield delta["content"]
        except httpx.HTTPError as exc:
            raise GenerationError(f"stream from {self.base_url} failed: {exc}") from exc
