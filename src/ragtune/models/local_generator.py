"""The local generator: a causal LM loaded through transformers, on the CPU by default.

Accepts a bundled model name (``smollm2-135m-instruct``, ``gemma-3-270m``), a ``.gguf``
file (converted once, see :mod:`ragtune.models.gguf_cache`) or a transformers model folder.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragtune.config import GeneratorSettings
from ragtune.errors import ConfigError, GenerationError
from ragtune.models.adapters import ADAPTERS, abstention, resolve_adapter
from ragtune.models.controls import (
    abstention_tokens,
    cut_after_marker,
    cut_at_stop,
    no_repeat_processor,
    stop_when,
    until_marker,
    until_stop,
)
from ragtune.models.fast_decode import AbstainCheck, Decoder, build_decoder
from ragtune.models.gguf_cache import bundled_gguf, converted_model, converted_tokenizer
from ragtune.models.offline import ensure_offline
from ragtune.models.projections import DecoderMode, bf16_supported, fp16_supported
from ragtune.models.registry import BUNDLED, bundled_model
from ragtune.types import Completion, Message

logger = logging.getLogger(__name__)

# auto: the exact fp32 decode loop where it covers the model (same tokens as
# transformers.generate); fp16: fp16 weights, fp32 activations (near-ties can flip); fast:
# int4 weights and bf16 decode steps (greedy output drifts); transformers:
# transformers.generate itself
DECODERS = ("auto", "exact", "fp16", "fast", "transformers")


def resolve_tokenizer_dir(model: str) -> Path:
    """A folder with the tokenizer and config of a bundled name, a ``.gguf`` path or a
    model folder: the whole conversion where one exists, else the tokenizer's alone
    (:func:`~ragtune.models.gguf_cache.converted_tokenizer`)."""
    return resolve_model_dir(model, weights=False)


def resolve_model_dir(model: str, *, weights: bool = True) -> Path:
    """A transformers folder for a bundled name, a ``.gguf`` path or a model folder
    (``weights=False``: see :func:`resolve_tokenizer_dir`)."""
    convert = converted_model if weights else converted_tokenizer
    names = [m.name for m in BUNDLED if m.role == "generator"]
    if model.lower() in names:
        return convert(bundled_gguf(bundled_model(model)))
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return convert(path)
    if path.is_dir() and (path / "config.json").exists():
        return path
    raise ConfigError(
        f"generator model {model!r} is neither a bundled model ({', '.join(names)}), "
        "a .gguf file nor a transformers model folder with a config.json"
    )


class LocalGenerator:
    """Generate with a local transformers causal LM.

    Example:
        >>> gen = LocalGenerator("smollm2-135m-instruct")  # doctest: +SKIP
        >>> gen.generate([{"role": "user", "content": "Hi"}], max_tokens=20).text  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str = "smollm2-135m-instruct",
        *,
        context_window: int | None = None,
        max_context: int | None = None,
        dtype: str = "float32",
        adapter: str | Path | None = None,
        decoder: str = "auto",
        prompt_lookup: int = 8,
        no_repeat: int = 6,
        stop: Sequence[str] = (),
        abstain_threshold: float | None = None,
    ) -> None:
        ensure_offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

        adapter_path = None
        adapter = resolve_adapter(adapter, model)
        if adapter is not None:
            from ragtune.models.peft_adapters import adapter_dir, base_of

            adapter_path = adapter_dir(adapter)
            trained_on = base_of(adapter_path)
            if resolve_model_dir(model) != resolve_model_dir(trained_on):
                logger.info("adapter %s was trained on %s: using that base, not %s",
                            adapter, trained_on, model)
                model = trained_on
        if no_repeat < 0:
            raise ConfigError(f"no_repeat must be 0 (off) or more, got {no_repeat}")
        self.no_repeat = no_repeat
        self.stop = tuple(s for s in stop if s)
        self.name = model
        self.adapter = adapter_path
        # the bundled grounded adapters answer once, "short answer [n]": what follows the
        # first marker is the model going on to copy another source, and is cut
        self.one_answer = adapter_path is not None and adapter_path.parent == ADAPTERS
        self.path = resolve_model_dir(model)
        self._torch = torch
        # AutoTokenizer's class resolution costs over a second; a tokenizer.json needs none
        tokenizer_cls = (PreTrainedTokenizerFast if (self.path / "tokenizer.json").exists()
                         else AutoTokenizer)
        self.tokenizer: Any = tokenizer_cls.from_pretrained(str(self.path), local_files_only=True)
        self.model: Any = AutoModelForCausalLM.from_pretrained(
            str(self.path), local_files_only=True, dtype=getattr(torch, dtype)
        )
        if adapter_path is not None:
            from peft import PeftModel

            # merged once at load: no LoRA overhead per token
            try:
                with warnings.catch_warnings():  # transformers' deprecation notes, not ours
                    warnings.simplefilter("ignore", FutureWarning)
                    tuned = PeftModel.from_pretrained(self.model, str(adapter_path))
            except (RuntimeError, ValueError, KeyError) as exc:  # shapes or modules differ
                raise ConfigError(
                    f"adapter {adapter_path} does not fit the base model {model} ({self.path}):"
                    f" {str(exc).splitlines()[0][:300]}; use an adapter trained on {model} "
                    "(its run.json names the base) or --adapter none") from None
            self.model = tuned.merge_and_unload()
        self.model.eval()
        native = int(getattr(self.model.config, "max_position_embeddings", 2048))
        window = context_window or native
        self.context_window = min(window, max_context) if max_context else window
        eos = self.model.generation_config.eos_token_id
        self.eos_ids: set[int] = set(eos if isinstance(eos, list) else [eos]) - {None}
        if prompt_lookup < 0:
            raise ConfigError(f"prompt_lookup must be 0 (off) or more, got {prompt_lookup}")
        self.prompt_lookup = prompt_lookup
        self.decoder = self._build_decoder(decoder, dtype)
        # a bundled adapter's abstention, weighed before each greedy answer (fast decoder)
        text, self.abstain_threshold = abstention(
            adapter_path if self.one_answer else None, abstain_threshold)
        self._abstain_ids, self._abstain_seconds = abstention_tokens(self.tokenizer, text)
        # ... and an answer that is only a citation says nothing: it may not begin with one
        self._ban_first: list[int] = [
            i for t, i in self.tokenizer.get_vocab().items()
            if self.tokenizer.convert_tokens_to_string([t]).lstrip().startswith("[")
        ] if self.one_answer else []
        self._lock = threading.Lock()

    def _build_decoder(self, choice: str, dtype: str) -> Decoder | None:
        """The fast decode loop for ``choice`` (see :data:`DECODERS`), or ``None`` for
        ``transformers.generate``. The transformers weights are released when it is built."""
        if choice not in DECODERS:
            raise ConfigError(f"unknown decoder {choice!r}; choose one of {', '.join(DECODERS)}")
        if choice == "transformers" or dtype != "float32":
            return None
        mode: DecoderMode = "exact" if choice == "auto" else choice  # type: ignore[assignment]
        if mode == "fast" and not bf16_supported():
            logger.info("this CPU has no bf16 kernels: exact decoding instead of fast")
            mode = "exact"
        if mode == "fp16" and not fp16_supported():
            logger.info("torch has no fp16-weight kernels for this CPU: exact decoding instead")
            mode = "exact"
        decoder = build_decoder(self.model, mode)
        if decoder is not None:
            self.model = None  # the decoder holds what it needs
        return decoder

    @classmethod
    def from_settings(cls, settings: GeneratorSettings) -> LocalGenerator:
        return cls(settings.model, context_window=settings.context_window,
                   max_context=settings.max_context, adapter=settings.adapter,
                   decoder=settings.decoder, prompt_lookup=settings.prompt_lookup,
                   no_repeat=settings.no_repeat, stop=settings.stop.split("|"),
                   abstain_threshold=settings.abstain_threshold)

    @property
    def adapter_name(self) -> str | None:
        """The adapter folder's name (a bundled one) or path, for the answer's record."""
        if self.adapter is None:
            return None
        if self.adapter.parent == ADAPTERS:
            return self.adapter.name
        return str(self.adapter)

    def _encode(self, messages: Sequence[Message]) -> Any:
        try:
            return self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        except Exception as exc:  # jinja errors, bad roles
            raise GenerationError(f"could not apply {self.name}'s chat template: {exc}") from exc

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return int(self._encode(messages)["input_ids"].shape[1])

    def _generate_kwargs(self, inputs: Any, max_tokens: int, temperature: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(inputs)
        kwargs["max_new_tokens"] = max_tokens
        kwargs["pad_token_id"] = self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=0.95)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self.no_repeat:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([no_repeat_processor(
                self.no_repeat, int(inputs["input_ids"].shape[1]))])
        if self.stop:
            kwargs.update(stop_strings=list(self.stop), tokenizer=self.tokenizer)
        return kwargs

    def _check(self) -> AbstainCheck | None:
        """The abstention to weigh before one answer, if the adapter names one: its tokens,
        and the one-token case and number variants of its second word (``The source``)."""
        if not self._abstain_ids:
            return None
        return AbstainCheck(self._abstain_ids, self.abstain_threshold,
                            seconds=self._abstain_seconds)

    def _tokens(self, inputs: Any, max_tokens: int, temperature: float,
                check: AbstainCheck | None = None) -> Iterator[int]:
        """New token ids from the fast decoder (the caller holds the lock)."""
        assert self.decoder is not None
        prompt = inputs["input_ids"][0].tolist()
        return self.decoder.tokens(prompt, max_tokens, eos=self.eos_ids,
                                   temperature=temperature, top_p=0.95,
                                   lookup=self.prompt_lookup, no_repeat=self.no_repeat,
                                   abstain=check, ban_first=self._ban_first)

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int = 96, temperature: float = 0.0
    ) -> Completion:
        inputs = self._encode(messages)
        n_prompt = int(inputs["input_ids"].shape[1])
        stopped = False
        check = self._check()
        with self._lock:
            if self.decoder is not None:
                new: list[int] = []
                for token in self._tokens(inputs, max_tokens, temperature, check):
                    new.append(token)
                    tail = self.tokenizer.decode(new[-24:], skip_special_tokens=True)
                    if ((self.stop and cut_at_stop(tail, self.stop)[1])
                            or (self.one_answer and cut_after_marker(tail)[1])):
                        stopped = True
                        break
            else:
                with self._torch.inference_mode():
                    out = self.model.generate(**self._generate_kwargs(inputs, max_tokens,
                                                                      temperature))
                new = out[0, n_prompt:].tolist()
        text, cut = cut_at_stop(self.tokenizer.decode(new, skip_special_tokens=True),
                                self.stop)
        if self.one_answer:
            text, marked = cut_after_marker(text)
            cut = cut or marked
        finished = (stopped or cut or len(new) < max_tokens
                    or (len(new) > 0 and new[-1] in self.eos_ids))
        return Completion(text=text.strip(), prompt_tokens=n_prompt, completion_tokens=len(new),
                          finish_reason="stop" if finished else "length",
                          abstain_probability=check.probability if check else None)

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 96, temperature: float = 0.0
    ) -> Iterator[str]:
        inputs = self._encode(messages)
        if self.decoder is not None:
            yield from self._stream_fast(inputs, max_tokens, temperature)
            return
        yield from self._stream_generate(inputs, max_tokens, temperature)

    def _stream_generate(self, inputs: Any, max_tokens: int, temperature: float,
                         ) -> Iterator[str]:
        """Text from ``transformers.generate``, held back while it could be the start of a
        stop sequence."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs(inputs, max_tokens, temperature)
        kwargs["streamer"] = streamer
        # the consumer stopping (a stop sequence, a client that left) ends generate too
        ended = threading.Event()
        kwargs["stopping_criteria"] = stop_when(ended)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock, self._torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # surfaced to the consumer below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield from self._until_end(piece for piece in streamer if piece)
        finally:
            ended.set()
            thread.join()
        if errors:
            raise GenerationError(f"{self.name} failed while streaming: {errors[0]}")

    def _stream_fast(self, inputs: Any, max_tokens: int, temperature: float) -> Iterator[str]:
        """Text as the decoder produces tokens: the whole answer is re-decoded each step and
        the new suffix sent, held back while it ends in an incomplete UTF-8 character."""
        def pieces() -> Iterator[str]:
            ids: list[int] = []
            sent = ""
            for token in self._tokens(inputs, max_tokens, temperature, self._check()):
                ids.append(token)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                if text.endswith("\ufffd") or not text.startswith(sent) or text == sent:
                    continue
                piece, sent = text[len(sent):], text
                yield piece

        with self._lock:
            try:
                yield from self._until_end(pieces())
            except Exception as exc:  # a failure mid-answer names the model
                raise GenerationError(f"{self.name} failed while streaming: {exc}") from exc

    def _until_end(self, pieces: Iterator[str]) -> Iterator[str]:
        """Streamed text up to a stop sequence (and the first marker, see ``one_answer``)."""
        text = until_stop(pieces, self.stop)
        return until_marker(text) if self.one_answer else text
