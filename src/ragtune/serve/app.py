"""The HTTP server: :func:`create_app` builds a FastAPI app around one knowledge base.

Models load once, when the app starts (or when a knowledge base is passed in, as the tests
do with fake models). Endpoints: ``/v1/chat/completions`` (OpenAI's schema, streaming),
``/v1/models``, ``/v1/retrieve``, ``/v1/documents``, ``/v1/kb``, ``/v1/whoami``, ``/health``,
``/openapi.json`` and the web page at ``/``. With API keys set, every endpoint but
``/health`` and the page's static files needs ``Authorization: Bearer KEY``; the page asks
for the key and sends it. Uploads and deletes need a write or admin key
(:mod:`ragtune.serve.keys`).

Example::

    from ragtune.serve import ServeSettings, create_app
    app = create_app(ServeSettings(kb=Path("my-kb"), api_keys=("s3cret",)))
    # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from importlib.resources import files
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ragtune._version import package_version
from ragtune.config import load_settings
from ragtune.display import relabel_answer
from ragtune.knowledge_base import KnowledgeBase
from ragtune.serve import chat, errors, pages
from ragtune.serve.keys import ApiKey
from ragtune.serve.library import Library, hits
from ragtune.serve.overview import overview
from ragtune.serve.schemas import (
    ERRORS,
    ChatRequest,
    DocumentList,
    DocumentOut,
    Health,
    KbOverview,
    ModelList,
    ModelOut,
    RetrieveRequest,
    RetrieveResponse,
    UploadResult,
    WhoAmI,
)
from ragtune.serve.security import KeyGuard, caller_of
from ragtune.serve.settings import ServeSettings

STATIC = files("ragtune.serve") / "static"
SETTINGS_ENV = "RAGTUNE_SERVE_SETTINGS"  # how ``ragtune serve --workers N`` passes settings


def from_environment() -> FastAPI:
    """The app for a worker process started by ``uvicorn --factory`` (``--workers N``)."""
    import os

    return create_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))


def _warm(kb: KnowledgeBase, settings: ServeSettings) -> None:
    """Load every model now, so the first request does not pay for it."""
    kb.embedder  # noqa: B018 - the properties load and cache the models
    kb.generator  # noqa: B018
    kb.lexical  # noqa: B018
    if settings.adapter:
        kb.tuned_generator(settings.adapter)


def return_large_frees_to_the_system(threshold: int = 128 * 1024) -> None:
    """Serve large allocations (>= ``threshold`` bytes) with mmap, so that freed ones go
    back to the system. glibc otherwise raises this threshold as tensors are freed and
    keeps what model loading freed on its heap: measured, a server held 1,041 MB after
    loading the generator, against 677 MB with this. A no-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(-3, threshold)  # M_MMAP_THRESHOLD
    except OSError:
        pass


def create_app(settings: ServeSettings, kb: KnowledgeBase | None = None) -> FastAPI:
    """The app for ``settings``; ``kb`` (already open) replaces opening ``settings.kb``."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        return_large_frees_to_the_system()
        base = kb if kb is not None else KnowledgeBase.open(
            settings.kb, load_settings(settings.config))
        _warm(base, settings)
        state["kb"], state["library"] = base, Library(base, settings.uploads)
        state["started"] = int(time.time())
        yield
        if kb is None:
            base.close()

    app = FastAPI(title="ragtune", version=package_version(), lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  description="RAG over a ragtune knowledge base with OpenAI-compatible "
                              "endpoints and cited sources.")
    errors.install(app)
    app.add_middleware(errors.BodyLimit, limit=settings.max_request_kb * 1024,
                       upload_limit=int(settings.max_upload_mb * 1024 * 1024) + 64 * 1024)
    # around the body limit: security headers on every response, the key checked before
    # any body is read; CORS outside it, so that a 401 still carries its CORS headers
    app.add_middleware(KeyGuard, keys=settings.keys)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])

    # the middleware's check again, for routes called directly: the caller's key
    def reader(request: Request) -> ApiKey:
        return caller_of(request, settings.keys, "read")

    def writer(request: Request) -> ApiKey:
        return caller_of(request, settings.keys, "write")

    guard = [Depends(reader)]
    pending = threading.BoundedSemaphore(settings.max_pending)  # chat requests in flight

    def the_kb() -> KnowledgeBase:
        return state["kb"]  # type: ignore[no-any-return]

    @app.get("/health", response_model=Health, tags=["server"])
    def health() -> Health:
        base = the_kb()
        return Health(auth=bool(settings.keys), kb_version=base.version,
                      documents=len(base.sources()), pipelines=list(settings.pipelines))

    @app.get("/openapi.json", dependencies=guard, include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/v1/models", response_model=ModelList, dependencies=guard, responses=ERRORS,
             tags=["openai"])
    def models() -> ModelList:
        return ModelList(data=[ModelOut(id=p, created=state["started"])
                               for p in settings.pipelines])

    @app.post("/v1/chat/completions", dependencies=guard, responses=ERRORS, tags=["openai"])
    def completions(request: ChatRequest) -> Any:
        if request.model not in settings.pipelines:
            raise errors.ApiError(404, f"unknown model {request.model!r}; this server has "
                                  + ", ".join(settings.pipelines), param="model",
                                  code="model_not_found")
        base = the_kb()
        turn = chat.Turn(request, settings.max_messages)  # the follow-up, rewritten
        limit = settings.max_tokens_limit
        max_tokens = chat.max_tokens_of(request, base.settings.generator.max_tokens, limit)
        k = request.k
        if k is not None and k > settings.max_k:
            raise errors.ApiError(400, f"k = {k} is over the limit of {settings.max_k}",
                                  param="k")
        pipeline = request.model
        adapter = settings.adapter if pipeline in ("closed", "serial", "parallel",
                                                   "layered") else None

        def run(watch: chat.Watch) -> Any:
            # every generation streams underneath, so that the deadline and a client that
            # left end it between two tokens
            tuned = chat.Tee(base.tuned_generator(adapter), watch.emit) if adapter else None
            question, note = chat.cut_question(turn.standalone(base.generator),
                                               settings.max_question_chars)
            try:
                answer = base.ask(question, k=k, max_tokens=max_tokens, pipeline=pipeline,
                                  adapter=adapter,
                                  generator=chat.Tee(base.generator_for(question), watch.emit),
                                  tuned=tuned)
            except chat.Stopped as exc:
                raise errors.ApiError(504, f"{exc}; ask a shorter question, or raise the "
                                      "server's --request-timeout", code="timeout") from None
            answer = relabel_answer(answer, base.display_names())  # never a server path
            return replace(answer, notes=(*answer.notes, note)) if note else answer

        if not pending.acquire(blocking=False):
            raise errors.ApiError(503, f"the server is answering {settings.max_pending} "
                                  "requests already; try again shortly", code="busy")
        slot = chat.Slot(pending)
        if request.stream:
            # strict mode drops sentences after generation: its answer is sent once chosen
            live = pipeline in chat.LIVE and base.settings.generator.citations != "strict"
            return chat.SlotStream(
                slot, chat.stream(run, pipeline, live, settings.request_timeout_s, slot,
                                  turn),
                media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            return chat.completion(run(chat.Watch(settings.request_timeout_s)), pipeline,
                                   max_tokens, turn)
        finally:
            slot.release()

    @app.post("/v1/retrieve", response_model=RetrieveResponse, dependencies=guard,
              responses=ERRORS, tags=["ragtune"])
    def retrieve(request: RetrieveRequest) -> RetrieveResponse:
        if request.k > settings.max_k:
            raise errors.ApiError(400, f"k = {request.k} is over the limit of "
                                  f"{settings.max_k}", param="k")
        base = the_kb()
        return RetrieveResponse(data=hits(base, request.query, request.k, request.mode,
                                          request.filters), kb_version=base.version)

    @app.get("/v1/documents", response_model=DocumentList, dependencies=guard,
             responses=ERRORS, tags=["ragtune"])
    def documents() -> DocumentList:
        return DocumentList(data=state["library"].documents())

    @app.get("/v1/kb", response_model=KbOverview, dependencies=guard, responses=ERRORS,
             tags=["ragtune"])
    def knowledge_base() -> KbOverview:
        """The knowledge base's name and size, and example questions made from its
        documents by rules (what the web page shows before the first question)."""
        return overview(the_kb(), settings.pipelines)

    @app.get("/v1/whoami", response_model=WhoAmI, responses=ERRORS, tags=["ragtune"])
    # the dependencies are locals, which string annotations cannot name: defaults instead
    def whoami(caller: ApiKey = Depends(reader)) -> WhoAmI:
        return WhoAmI(auth=bool(settings.keys), scope=caller.scope,
                      collection=caller.collection)

    @app.post("/v1/documents", response_model=UploadResult, responses=ERRORS,
              tags=["ragtune"])
    def upload(file: Annotated[list[UploadFile], File(description="Files to ingest.")],
               caller: ApiKey = Depends(writer)) -> UploadResult:
        limit = int(settings.max_upload_mb * 1024 * 1024)
        contents = []
        for f in file:
            data = f.file.read(limit + 1)
            if len(data) > limit:
                raise errors.ApiError(413, f"{f.filename}: over the upload limit of "
                                      f"{settings.max_upload_mb:g} MB", param="file",
                                      code="too_large")
            contents.append((f.filename, data))
        return UploadResult(**state["library"].add(contents, caller))

    @app.delete("/v1/documents/{doc_id}", response_model=DocumentOut, responses=ERRORS,
                tags=["ragtune"])
    def delete(doc_id: str, caller: ApiKey = Depends(writer)) -> DocumentOut:
        return state["library"].delete(doc_id, caller)  # type: ignore[no-any-return]

    @app.get("/v1/chunks/{chunk_id}/page.png", dependencies=guard, responses=ERRORS,
             tags=["ragtune"], response_class=Response)
    def chunk_page(chunk_id: str, scale: float = 1.5) -> Response:
        """The PDF page of a chunk (a hit's or a citation's ``id``) as a PNG, to draw its
        ``boxes`` on."""
        return Response(pages.page_image(the_kb(), chunk_id, scale), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=300"})

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
