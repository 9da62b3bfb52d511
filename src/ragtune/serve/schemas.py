"""Request and response bodies: OpenAI's chat schema, plus retrieval and documents."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ContentPart(BaseModel):
    type: str = "text"
    text: str = ""


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's ``/v1/chat/completions`` body; fields ragtune does not use are accepted."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "rag", "messages": [{"role": "user", "content": "What does the warranty "
                                       "cover?"}]},
        {"model": "closed", "stream": True, "max_tokens": 64,
         "messages": [{"role": "system", "content": "Answer briefly."},
                      {"role": "user", "content": "Summarise the returns policy."}]}]})

    model: str = Field("rag", description="The pipeline: see GET /v1/models.",
                       examples=["rag", "closed", "layered"])
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    k: int | None = Field(None, ge=1, description="ragtune: chunks to retrieve.")


class Filters(BaseModel):
    source: str | None = Field(None, description="Glob on the source name.")
    pages: str | None = Field(None, description="7 or 3-7.")
    since: str | None = Field(None, description="ISO date: ingested since.")
    until: str | None = Field(None, description="ISO date: ingested until.")


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"query": "warranty period", "k": 3, "mode": "hybrid",
         "filters": {"source": "*.pdf", "pages": "1-3"}}]})

    query: str = Field(..., min_length=1)
    k: int = Field(5, ge=1)
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    filters: Filters | None = None


class HitOut(BaseModel):
    id: str
    source: str = Field(description="The display name: relative to the ingested folder, "
                                    "uploads as uploads/COLLECTION/NAME; never a server path.")
    name: str
    page: int | None
    text: str
    score: float
    heading: str | None = None
    kind: str = Field("text", description="table: rows of a table under its header row "
                                          "(the header is the last line of the context).")
    boxes: list[list[float]] = Field(
        default_factory=list, description="PDFs: one [x0, y0, x1, y1] per line of the "
        "passage on its page, in fractions of the page's width and height from its "
        "top-left corner.")


class RetrieveResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[HitOut]
    kb_version: int | None


class DocumentOut(BaseModel):
    id: str
    name: str
    source: str = Field(description="The display name, as citations show it.")
    size: int
    chunks: int
    pages: int | None
    ingested_at: float
    status: Literal["indexed", "moved", "no text"] = Field(
        "indexed", description="indexed: searchable; moved: searchable, but its file is no "
        "longer where it was ingested from, so its pages cannot be shown (ingest it again); "
        "no text: nothing to search.")
    uploaded: bool
    collection: str | None = Field(None, description="The collection that uploaded it; "
                                                     "null for files the operator ingested.")


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentOut]


class UploadResult(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentOut]
    added: int
    updated: int
    unchanged: int


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragtune"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    auth: bool
    kb_version: int | None
    documents: int
    pipelines: list[str]


class Example(BaseModel):
    question: str = Field(description="A question made by rules from a document's text.")
    source: str = Field(description="The document it was made from (its display name).")


class KbOverview(BaseModel):
    """What the web page shows first: the knowledge base and questions to start with."""

    object: Literal["knowledge_base"] = "knowledge_base"
    name: str = Field(description="The knowledge base's folder name (never its path).")
    kb_version: int | None
    documents: int
    chunks: int
    pages: int = Field(description="Pages of its paged documents (PDFs), summed.")
    pipelines: list[str]
    examples: list[Example]


class WhoAmI(BaseModel):
    """The calling key's scope and collection (never the key)."""

    auth: bool = Field(description="Whether this server checks keys.")
    scope: str = Field(description="read, write or admin.")
    collection: str = Field(description="Where this key's uploads go: uploads/COLLECTION/.")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "Bad request"), (401, "Missing or wrong API key"),
        (403, "The key's scope or collection does not allow it"), (404, "Not found"),
        (413, "Request or file too large"))}
