"""What every response carries and what every API request proves first: security headers
on all responses, and the API key and its scope checked before a request's body is read.

The key check runs as ASGI middleware, ahead of FastAPI's body parsing, so a request
without a valid key gets 401 whatever its body holds (malformed JSON included), a read key
sending an upload gets 403 before the upload is read, and the server never parses a body
for a caller it does not know. The routes check the key again (:func:`caller_of`) and use
its collection to check who owns a document.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragtune.serve.errors import ApiError, error_response
from ragtune.serve.keys import LOCAL, ApiKey

__all__ = ["HEADERS", "KeyGuard", "caller_of", "find_key", "needed_scope", "protected"]

# the page's script and styles are files under /static: nothing inline is allowed
HEADERS = {
    "content-security-policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
_UNAUTHORISED = ("missing or wrong API key; send the header 'Authorization: Bearer KEY'")


def find_key(header: str, keys: Sequence[ApiKey]) -> ApiKey | None:
    """The key of ``keys`` that an ``Authorization`` header carries, or None (compared in
    constant time with every key; an empty key is never accepted)."""
    scheme, _, sent = header.partition(" ")
    sent = sent.strip()
    if scheme.lower() != "bearer" or not sent:
        return None
    found = None
    for key in keys:
        if hmac.compare_digest(sent.encode(), key.secret.encode()):
            found = key
    return found


def protected(path: str) -> bool:
    """The paths that need a key: the API and its schema (the page and /health do not)."""
    return path.startswith("/v1/") or path == "/openapi.json"


def needed_scope(method: str, path: str) -> str:
    """The scope a request needs: ``write`` to upload or delete documents, else ``read``
    (ownership of the document is the route's check)."""
    path = path.rstrip("/")
    if (method == "POST" and path == "/v1/documents") or (
            method == "DELETE" and path.startswith("/v1/documents/")):
        return "write"
    return "read"


def refusal(key: ApiKey, scope: str) -> str:
    return (f"this key's scope is {key.scope!r} (collection {key.collection!r}); this request "
            f"needs a {scope!r} key")


def caller_of(request: Request, keys: Sequence[ApiKey], scope: str) -> ApiKey:
    """The caller's key, checked again for a route (:data:`LOCAL` on a server without
    keys); raises ApiError 401 without a valid key, 403 without ``scope``."""
    if not keys:
        return LOCAL
    key = find_key(request.headers.get("authorization", ""), keys)
    if key is None:
        raise ApiError(401, _UNAUTHORISED, code="invalid_api_key")
    if not key.allows(scope):
        raise ApiError(403, refusal(key, scope), code="insufficient_scope")
    return key


class KeyGuard:
    """Adds :data:`HEADERS` to every response; with ``keys``, answers 401 to a protected
    request without a valid key, and 403 to one whose key lacks the scope, before anything
    reads its body."""

    def __init__(self, app: ASGIApp, keys: Sequence[ApiKey]) -> None:
        self.app, self.keys = app, tuple(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(
                    (k.encode(), v.encode()) for k, v in HEADERS.items()
                    if k.encode() not in have)]
            await send(message)

        if self.keys and scope.get("method") != "OPTIONS" and protected(scope["path"]):
            headers = dict(scope.get("headers") or [])
            header = headers.get(b"authorization", b"").decode("latin-1")
            key = find_key(header, self.keys)
            need = needed_scope(scope.get("method", ""), scope["path"])
            if key is None:
                response = error_response(401, _UNAUTHORISED, code="invalid_api_key",
                                          headers={"WWW-Authenticate": "Bearer"})
            elif not key.allows(need):
                response = error_response(403, refusal(key, need), code="insufficient_scope")
            else:
                response = None
            if response is not None:
                await response(scope, receive, with_headers)
                return
        await self.app(scope, receive, with_headers)
