"""Local generation on llama.cpp, in process, through the prebuilt ``xllamacpp`` wheel.

The bundled GGUF file runs as stored (no conversion to torch). The prompt is the model's
own chat template over its own tokenizer (read without transformers where it can be:
:mod:`ragtune.models.chat_tokenizer`), so the text and the token count are the same as the
``local`` generator's. Greedy decoding at temperature 0; stop
sequences; repetition is held back with llama.cpp's DRY sampler over the answer.

LoRA adapters (the bundled grounded-answer adapter, ``ragtune tune lora`` runs) are PEFT
folders; they are written once as GGUF LoRA files (:mod:`ragtune.models.gguf_lora`) and
applied by llama.cpp over the quantised base. A bundled adapter's abstention is weighed
before each greedy answer as the local generator weighs it, from llama.cpp's token
probabilities (two one-token requests over the cached prompt): at the adapter's threshold
or above the answer is the abstention, below it the abstention's first token is banned.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragtune.config import GeneratorSettings
from ragtune.errors import ConfigError, GenerationError, RagtuneError
from ragtune.models.adapters import ADAPTERS, abstention, resolve_adapter
from ragtune.models.chat_tokenizer import load_chat_tokenizer
from ragtune.models.controls import abstention_tokens, cut_after_marker, until_marker
from ragtune.models.gguf_cache import bundled_gguf
from ragtune.models.gguf_lora import gguf_lora
from ragtune.models.registry import BUNDLED, bundled_model
from ragtune.types import Completion, Message

INSTALL = "pip install xllamacpp"
TOP = 40  # token probabilities asked for when weighing the abstention


def gguf_path(model: str) -> Path:
    """The GGUF file of a bundled generator name or a ``.gguf`` path."""
    names = [m.name for m in BUNDLED if m.role == "generator"]
    if model.lower() in names:
        return bundled_gguf(bundled_model(model))
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    raise ConfigError(
        f"the llamacpp generator runs GGUF files: {model!r} is neither a bundled model "
        f"({', '.join(names)}) nor a .gguf file")


class LlamaCppGenerator:
    """One model loaded in llama.cpp's server engine, ``parallel`` requests decoded together."""

    def __init__(self, model: str = "smollm2-135m-instruct", *, max_context: int = 2048,
                 threads: int | None = None, parallel: int = 1, no_repeat: int = 6,
                 stop: Sequence[str] = (), adapter: str | Path | None = None,
                 abstain_threshold: float | None = None,
                 prompt_cache_mb: int = GeneratorSettings.prompt_cache_mb) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise RagtuneError(
                f"the llamacpp generator needs llama.cpp's engine; install it with: {INSTALL}"
            ) from exc
        from ragtune.models.local_generator import resolve_tokenizer_dir

        self.name = model
        self.path = gguf_path(model)
        base = resolve_tokenizer_dir(model)  # llama.cpp runs the GGUF: no weights needed
        self.tokenizer: Any = load_chat_tokenizer(base)
        self.adapter = self._adapter(adapter, model, base)
        # the bundled adapters answer "short answer [n]"; what follows is copied text
        self.one_answer = self.adapter is not None and self.adapter.parent == ADAPTERS
        self.context_window = max_context
        self.no_repeat = no_repeat
        self.stop = [s for s in stop if s]
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_parallel = parallel
        params.n_ctx = max_context * parallel  # each slot gets the whole window
        params.cache_ram_mib = prompt_cache_mb  # llama.cpp's own default, 8 GiB, grows a
        # server by about 45 MB an answer (gemma-3-270m) until it is full
        n = threads or min(os.cpu_count() or 1, 8)
        params.cpuparams.n_threads = n
        params.cpuparams_batch.n_threads = n
        params.warmup = False
        params.verbosity = -1
        if self.adapter is not None:
            lora = xllamacpp.CommonAdapterLoraInfo()
            lora.path = str(gguf_lora(self.adapter, base))
            lora.scale = 1.0
            params.lora_adapters = [lora]
        self._server = xllamacpp.Server(params)
        # each answer's requests (the abstention's two, then the answer) go to one slot, so
        # the prompt it has read is still in that slot's cache for the next request
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(parallel):
            self._slots.put(slot)
        text, self.abstain_threshold = abstention(
            self.adapter if self.one_answer else None, abstain_threshold)
        self.abstain_text = text
        ids, self._abstain_seconds = abstention_tokens(self.tokenizer, text)
        self._abstain_first = ids[0] if ids else None

    @staticmethod
    def _adapter(adapter: str | Path | None, model: str, base: Path) -> Path | None:
        from ragtune.models.local_generator import resolve_tokenizer_dir
        from ragtune.models.peft_adapters import adapter_dir, base_of

        chosen = resolve_adapter(adapter, model)
        if chosen is None:
            return None
        path = adapter_dir(chosen)
        if resolve_tokenizer_dir(base_of(path)) != base:
            raise ConfigError(f"adapter {path} was trained on {base_of(path)!r}, not {model!r}: "
                              f"pass --model {base_of(path)}")
        return path

    @classmethod
    def from_settings(cls, settings: GeneratorSettings) -> LlamaCppGenerator:
        return cls(settings.model, max_context=settings.max_context, adapter=settings.adapter,
                   no_repeat=settings.no_repeat, stop=settings.stop.split("|"),
                   abstain_threshold=settings.abstain_threshold, parallel=settings.parallel,
                   prompt_cache_mb=settings.prompt_cache_mb)

    @property
    def adapter_name(self) -> str | None:
        """The adapter folder's name (a bundled one) or path, for the answer's record."""
        if self.adapter is None:
            return None
        return self.adapter.name if self.one_answer else str(self.adapter)

    def _prompt(self, messages: Sequence[Message]) -> str:
        try:
            return str(self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, tokenize=False))
        except Exception as exc:  # jinja errors, bad roles
            raise GenerationError(f"could not apply {self.name}'s chat template: {exc}") from exc

    def _ids(self, messages: Sequence[Message]) -> list[int]:
        """The prompt as token ids, sent as ids: llama.cpp tokenizing the text would add a
        second BOS to a template that writes its own (gemma's), and a prompt that differs
        by one token is not found in the cache the abstention's requests leave."""
        ids: list[int] = self.tokenizer(self._prompt(messages),
                                        add_special_tokens=False)["input_ids"]
        return ids

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._ids(messages))

    @contextmanager
    def _slot(self) -> Iterator[int]:
        """One of llama.cpp's slots, held for one answer's requests."""
        slot = self._slots.get()
        try:
            yield slot
        finally:
            self._slots.put(slot)

    def _probabilities(self, prompt: list[int], slot: int) -> dict[int, float]:
        """The ``TOP`` likeliest next tokens after ``prompt`` (token ids) and their
        probabilities, from one one-token request (the prompt's cache is kept)."""
        out = self._check(self._server.handle_completions({
            "prompt": prompt, "max_tokens": 1, "n_probs": TOP, "temperature": 0.0,
            "top_k": 1, "cache_prompt": True, "post_sampling_probs": False,
            "id_slot": slot}))
        content = (out["choices"][0].get("logprobs") or {}).get("content") or [{}]
        return {int(t["id"]): math.exp(t["logprob"])
                for t in content[0].get("top_logprobs", [])}

    def abstain_probability(self, messages: Sequence[Message]) -> float | None:
        """The probability of the abstention's first token followed by any form of its
        second word (a token outside the ``TOP`` likeliest counts 0); ``None`` without a
        bundled adapter's abstention."""
        with self._slot() as slot:
            return self._abstain_probability(self._ids(messages), slot)

    def _abstain_probability(self, prompt: list[int], slot: int) -> float | None:
        first = self._abstain_first
        if first is None:
            return None
        p_first = self._probabilities(prompt, slot).get(first, 0.0)
        if p_first == 0.0 or not self._abstain_seconds:
            return p_first
        after = self._probabilities([*prompt, first], slot)
        return p_first * sum(after.get(i, 0.0) for i in self._abstain_seconds)

    def _request(self, prompt: list[int], max_tokens: int, temperature: float,
                 stream: bool, slot: int, ban: Sequence[int] = ()) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": prompt, "max_tokens": max_tokens, "stream": stream,
            "temperature": temperature, "stop": self.stop, "cache_prompt": True,
            "id_slot": slot,
        }
        if ban:
            body["logit_bias"] = [[i, False] for i in ban]
        if temperature <= 0:
            body["top_k"] = 1
        if self.no_repeat:
            # DRY: a token that would extend a run already written (longer than the
            # allowed length) is penalised; the window covers the answer, not the sources
            body.update(dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=self.no_repeat,
                        dry_penalty_last_n=max_tokens)
        return body

    @staticmethod
    def _check(response: Any) -> dict[str, Any]:
        if isinstance(response, str):
            response = json.loads(response)
        if not isinstance(response, dict) or "error" in response:
            raise GenerationError(f"llama.cpp failed: {response}")
        return response

    def _weigh(self, prompt: list[int], temperature: float, slot: int
               ) -> tuple[float | None, bool, list[int]]:
        """The abstention's probability, whether it is the answer, and the ids to ban
        in the answer when it is not: its first token (``The`` without a space before it
        starts nothing else a short answer needs; llama.cpp bans for the whole answer)."""
        if temperature > 0 or self._abstain_first is None:
            return None, False, []
        p = self._abstain_probability(prompt, slot)
        if self.abstain_threshold is None or p is None:
            return p, False, []
        return p, p >= self.abstain_threshold, [self._abstain_first]

    def generate(self, messages: Sequence[Message], *, max_tokens: int,
                 temperature: float = 0.0) -> Completion:
        prompt = self._ids(messages)  # once: the abstention's requests and the answer's
        with self._slot() as slot:
            if self.one_answer:  # streamed, so decoding ends at the first marker
                p, abstain, ban = self._weigh(prompt, temperature, slot)
                text = self.abstain_text if abstain else "".join(
                    until_marker(self._pieces(prompt, max_tokens, temperature, slot, ban)))
                written = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                return Completion(text=text.strip(), prompt_tokens=len(prompt),
                                  completion_tokens=written, finish_reason="stop"
                                  if cut_after_marker(text)[1] or written < max_tokens
                                  else "length", abstain_probability=p)
            out = self._check(self._server.handle_completions(
                self._request(prompt, max_tokens, temperature, stream=False, slot=slot)))
        choice, usage = out["choices"][0], out["usage"]
        return Completion(text=choice["text"].strip(), prompt_tokens=usage["prompt_tokens"],
                          completion_tokens=usage["completion_tokens"],
                          finish_reason="length" if choice["finish_reason"] == "length"
                          else "stop")

    def stream(self, messages: Sequence[Message], *, max_tokens: int,
               temperature: float = 0.0) -> Iterator[str]:
        prompt = self._ids(messages)
        with self._slot() as slot:  # held until the answer is read or dropped
            if not self.one_answer:
                yield from self._pieces(prompt, max_tokens, temperature, slot)
                return
            _, abstain, ban = self._weigh(prompt, temperature, slot)
            if abstain:
                yield self.abstain_text
                return
            yield from until_marker(self._pieces(prompt, max_tokens, temperature, slot, ban))

    def _pieces(self, prompt: list[int], max_tokens: int, temperature: float, slot: int,
                ban: Sequence[int] = ()) -> Iterator[str]:
        chunks: queue.Queue[Any] = queue.Queue()
        done = object()
        stopped = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            chunks.put(chunk)
            return stopped.is_set()  # True asks llama.cpp to stop this request

        def run() -> None:
            try:
                self._server.handle_completions(
                    self._request(prompt, max_tokens, temperature, stream=True, slot=slot,
                                  ban=ban),
                    on_chunk)
            except Exception as exc:  # surfaced in the caller's thread
                chunks.put(exc)
            chunks.put(done)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            while (chunk := chunks.get()) is not done:
                if isinstance(chunk, Exception):
                    raise GenerationError(f"llama.cpp failed: {chunk}") from chunk
                text = self._check(chunk)["choices"][0].get("text", "")
                if text:
                    yield text
        finally:
            stopped.set()
            worker.join(timeout=60)  # the request has ended: its slot is free again
