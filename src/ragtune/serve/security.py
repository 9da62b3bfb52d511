"""What every response carries and what every API request proves first: security headers
on all responses, and the API key checked before a request's body is read.

The key check runs as ASGI middleware, ahead of FastAPI's body parsing, so a request
without a valid key gets 401 whatever its body holds (malformed JSON included) and the
server never parses a body for a caller it does not know.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragtune.serve.errors import error_response

__all__ = ["HEADERS", "KeyGuard", "key_accepted", "protected"]

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


def key_accepted(header: str, keys: Sequence[str]) -> bool:
    """Whether an ``Authorization`` header carries one of ``keys`` (compared in constant
    time; an empty key is never accepted)."""
    scheme, _, key = header.partition(" ")
    key = key.strip()
    return scheme.lower() == "bearer" and bool(key) and any(
        hmac.compare_digest(key.encode(), k.encode()) for k in keys)


def protected(path: str) -> bool:
    """The paths that need a key: the API and its schema (the page and /health do not)."""
    return path.startswith("/v1/") or path == "/openapi.json"


class KeyGuard:
    """Adds :data:`HEADERS` to every response; with ``keys``, answers 401 to a protected
    request without a valid key before anything reads its body."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
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
            if not key_accepted(header, self.keys):
                response = error_response(401, _UNAUTHORISED, code="invalid_api_key",
                                          headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, with_headers)
                return
        await self.app(scope, receive, with_headers)
