"""``POST /v1/chat/completions``: OpenAI's schema, answered by a ragtune pipeline.

The last user message is the question; with earlier turns in ``messages`` it is read as
a follow-up and rewritten into a standalone question before retrieval
(:mod:`ragtune.rag.followup`); ``ragtune.question`` in the response is the question that
was searched, and ``ragtune.rewrite`` says how it came from the one asked. The response
carries the citations in an extra
``citations`` field (OpenAI clients ignore it; ``response.model_extra["citations"]`` reads it)
and ragtune's timings, route and abstention under ``ragtune``. With ``stream: true`` the
tokens go out as server-sent events in OpenAI's chunk format as the model writes them
(``rag``, ``closed``, ``serial``); ``parallel`` and ``layered`` stream the answer once their
judge or reconciliation has chosen it, since only then is it known. The last chunk carries
the citations and the usage.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from os.path import basename
from typing import Any

from fastapi.responses import StreamingResponse

from ragtune.documents.tables import split_context
from ragtune.models.protocol import Generator
from ragtune.rag.followup import rewrite
from ragtune.serve.errors import ApiError
from ragtune.serve.schemas import ChatRequest
from ragtune.types import Answer, Completion, Message

LIVE = ("rag", "closed", "serial")  # pipelines whose one generation is the answer
KEEP_ALIVE_S = 1.0  # a stream with nothing to send for this long sends a comment


class Slot:
    """One request's place under the server's bound: released once, whoever gets there
    first (the answer's thread when it ends, or the response when no answer started)."""

    def __init__(self, semaphore: threading.BoundedSemaphore) -> None:
        self._semaphore, self._lock, self._held = semaphore, threading.Lock(), True
        self.answering = False  # an answer thread runs, and will release the slot

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._semaphore.release()


class SlotStream(StreamingResponse):
    """A streamed answer that frees its :class:`Slot` even when the client left before the
    answer began (then no thread ever ran to free it)."""

    def __init__(self, slot: Slot, content: Iterator[str], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.slot.answering:  # the stream never began: no thread will free it
                self.slot.release()


class Stopped(Exception):
    """Raised by an ``emit`` to end a generation: its client left, or time ran out."""


class Watch:
    """What ends one request's generation early: a deadline, and (streaming) the client
    going away. ``emit`` checks both before handing a piece on; raising :class:`Stopped`
    inside the generator's stream ends the decode loop and frees the model."""

    def __init__(self, timeout_s: float, send: Callable[[str], None] | None = None) -> None:
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.send = send
        self.gone = threading.Event()

    def emit(self, piece: str) -> None:
        if self.gone.is_set():
            raise Stopped("the client disconnected")
        if time.monotonic() > self.deadline:
            raise Stopped(f"the answer took over {self.timeout_s:g} s")
        if self.send is not None:
            self.send(piece)


def cut_question(question: str, limit: int) -> tuple[str, str | None]:
    """The question cut to ``limit`` characters (at a word where one is near), and the
    note saying so."""
    if len(question) <= limit:
        return question, None
    cut = question[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut, (f"the question was cut from {len(question):,} to {len(cut):,} characters "
                 f"(the server's limit); ask a shorter question for a complete one")


class Tee:
    """A generator that streams underneath ``generate`` and hands each piece to ``emit``."""

    def __init__(self, inner: Generator, emit: Callable[[str], None]) -> None:
        self.inner, self.emit = inner, emit
        self.name, self.context_window = inner.name, inner.context_window

    def __getattr__(self, name: str) -> Any:  # prompt_style and the like
        return getattr(self.inner, name)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self.inner.count_tokens(messages)

    def generate(self, messages: Sequence[Message], *, max_tokens: int,
                 temperature: float = 0.0) -> Completion:
        pieces = []
        for piece in self.inner.stream(messages, max_tokens=max_tokens,
                                       temperature=temperature):
            pieces.append(piece)
            self.emit(piece)
        text = "".join(pieces)
        empty = self.inner.count_tokens([{"role": "assistant", "content": ""}])
        used = max(0, self.inner.count_tokens([{"role": "assistant", "content": text}]) - empty)
        return Completion(text=text, prompt_tokens=self.inner.count_tokens(messages),
                          completion_tokens=used,
                          finish_reason="length" if used >= max_tokens else "stop")

    def stream(self, messages: Sequence[Message], *, max_tokens: int,
               temperature: float = 0.0) -> Iterator[str]:
        return self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature)


class Turn:
    """One request's question: the last user message, read as a follow-up of the earlier
    user messages (each of those read with the rules alone, oldest first).

    The rules run when the request arrives; the generator, for a follow-up the rules do
    not decide, only in :meth:`standalone`, under the request's slot and deadline.
    """

    def __init__(self, request: ChatRequest, max_messages: int) -> None:
        asked = question_of(request, max_messages)
        self.history: list[str] = []
        for earlier in [m.text().strip() for m in request.messages if m.role == "user"][:-1]:
            if earlier:
                self.history.append(rewrite(earlier, self.history).question)
        self.rewrite = rewrite(asked, self.history)

    def standalone(self, generator: Generator | None) -> str:
        if self.rewrite.rule == "kept" and generator is not None:
            self.rewrite = rewrite(self.rewrite.asked, self.history, generator)
        return self.rewrite.question


def citations(answer: Answer) -> list[dict[str, Any]]:
    """Each citation's fields, its file name, and for rows of a table the header row that
    heads them (``header``; the rows alone do not say which column is which)."""
    return [{**c.to_dict(), "name": basename(c.chunk.source),
             **({"header": split_context(c.chunk.context)[1]} if c.chunk.kind == "table"
                else {})} for c in answer.citations]


def extras(answer: Answer, turn: Turn | None = None) -> dict[str, Any]:
    more = {} if turn is None else {
        "question": answer.question,
        "rewrite": {"asked": turn.rewrite.asked, "question": turn.rewrite.question,
                    "rule": turn.rewrite.rule}}
    return {**more, "pipeline": answer.pipeline, "steps": list(answer.steps),
            "timings": {k: round(v, 2) for k, v in answer.timings.items()},
            "route": answer.route, "judge": answer.judge, "abstained": answer.abstained,
            "adapter": answer.adapter, "kb_version": answer.kb_version,
            "language": answer.language, "unsupported": list(answer.unsupported),
            "notes": list(answer.notes),
            # the answer as checked: the streamed text with the [n] markers ragtune added
            # and its spans completed, or the abstention the model began with
            "answer": answer.text}


def usage(answer: Answer) -> dict[str, int]:
    return {"prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens}


def question_of(request: ChatRequest, max_messages: int) -> str:
    if len(request.messages) > max_messages:
        raise ApiError(400, f"{len(request.messages)} messages; at most {max_messages}",
                       param="messages")
    users = [m for m in request.messages if m.role == "user"]
    question = users[-1].text().strip() if users else ""
    if not question:
        raise ApiError(400, "no user message with text; the last user message is the "
                       "question", param="messages")
    return question


def max_tokens_of(request: ChatRequest, default: int, limit: int) -> int:
    asked = request.max_completion_tokens or request.max_tokens
    if asked is not None and asked > limit:
        raise ApiError(400, f"max_tokens = {asked} is over this server's limit of {limit}",
                       param="max_tokens")
    return min(asked or default, limit)


def completion(answer: Answer, model: str, max_tokens: int,
               turn: Turn | None = None) -> dict[str, Any]:
    finish = "length" if answer.completion_tokens >= max_tokens else "stop"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                     "finish_reason": finish, "logprobs": None}],
        "usage": usage(answer), "citations": citations(answer),
        "ragtune": extras(answer, turn)}


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any],
           finish: str | None = None, **extra: Any) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                         "logprobs": None}], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


_END = object()


def stream(run: Callable[[Watch], Answer], model: str, live: bool, timeout_s: float,
           slot: Slot | None = None, turn: Turn | None = None) -> Iterator[str]:
    """Server-sent events for one answer; ``run(watch)`` answers, handing each piece to
    ``watch.emit`` (which passes it on to the client when ``live``). When the client goes
    away the generation stops at its next piece; ``slot`` is released when it is over."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    pieces: queue.Queue[Any] = queue.Queue()
    result: dict[str, Any] = {}
    watch = Watch(timeout_s, pieces.put if live else None)

    def work() -> None:
        try:
            result["answer"] = run(watch)
        except Exception as exc:  # reported to the client as an error event
            result["error"] = exc
        finally:
            pieces.put(_END)
            if slot is not None:
                slot.release()

    if slot is not None:
        slot.answering = True
    threading.Thread(target=work, daemon=True, name="ragtune-answer").start()
    try:
        yield _chunk(cid, model, created, {"role": "assistant", "content": ""})
        while True:
            try:
                piece = pieces.get(timeout=KEEP_ALIVE_S)
            except queue.Empty:  # a comment line: keeps the connection, and lets a client
                yield ": keep-alive\n\n"  # that left be noticed while nothing streams
                continue
            if piece is _END:
                break
            yield _chunk(cid, model, created, {"content": piece})
    except GeneratorExit:  # the client left: stop generating for it
        watch.gone.set()
        raise
    if "error" in result:
        exc = result["error"]
        yield ("data: " + json.dumps({"error": {
            "message": str(exc), "type": "server_error" if not isinstance(exc, ApiError)
            else "invalid_request_error", "param": None, "code": None}}) + "\n\n")
        yield "data: [DONE]\n\n"
        return
    answer: Answer = result["answer"]
    if not live:  # replay the chosen answer word by word
        for i, word in enumerate(answer.text.split(" ")):
            yield _chunk(cid, model, created, {"content": word if i == 0 else " " + word})
    yield _chunk(cid, model, created, {}, "stop", usage=usage(answer),
                 citations=citations(answer), ragtune=extras(answer, turn))
    yield "data: [DONE]\n\n"
