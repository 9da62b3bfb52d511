"""API keys with a scope and a collection, parsed from ``--api-key``, ``--api-key-file`` and
``RAGTUNE_API_KEYS`` entries.

An entry is ``KEY`` (an admin key: what every key was before scopes), ``KEY:SCOPE`` or
``KEY:SCOPE:COLLECTION``. Scopes, each allowing what the one before it does:

- ``read``: search, chat, list documents, ``/v1/whoami``;
- ``write``: upload, and delete or overwrite the documents of its own collection;
- ``admin``: delete any document, whichever collection uploaded it.

A collection names who uploaded a document (uploads go to ``uploads/COLLECTION/``). Without
one, an admin key's is ``default`` (the ``uploads/`` folder itself, where uploads went
before collections) and another key's is ``key-`` and the first 8 hex digits of the key's
SHA-256: stable across restarts, and not the key. A key holding ``:`` is written with its
scope (``a:b:admin``), since the parts are read from the right.

Example::

    >>> parse_key("s3cret:write:alice", "--api-key 1")
    ApiKey(scope='write', collection='alice')
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ragtune.errors import ConfigError

__all__ = ["DEFAULT_COLLECTION", "LOCAL", "SCOPES", "ApiKey", "parse_key", "parse_keys"]

SCOPES = ("read", "write", "admin")  # each allows what the ones before it do
DEFAULT_COLLECTION = "default"
_COLLECTION = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class ApiKey:
    """A key, what it may do and whose documents it writes; ``repr`` never shows the key."""

    secret: str = field(repr=False)
    scope: str
    collection: str

    def allows(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


LOCAL = ApiKey("", "admin", DEFAULT_COLLECTION)  # the caller of a server without keys


def _check_secret(secret: str, where: str) -> None:
    if not secret.strip():
        raise ConfigError(
            f"API key {where} is empty: an unset variable in --api-key \"$KEY\" gives an "
            "empty key, which would open the server to anyone. Set the variable, use "
            "--api-key-file FILE, or leave --api-key out for a local server without keys")
    if any(c.isspace() for c in secret):
        raise ConfigError(f"API key {where} contains white space; keys are sent as "
                          "'Authorization: Bearer KEY' and cannot hold spaces")
    if not secret.isascii() or not secret.isprintable():
        raise ConfigError(f"API key {where} has characters outside printable ASCII; an "
                          "HTTP header cannot carry them reliably")


def parse_key(entry: str, where: str) -> ApiKey:
    """The key of one entry; ``where`` names the entry in errors (``--api-key 2``,
    ``keys.txt line 3``), which never repeat the key itself."""
    parts = entry.split(":")
    if len(parts) >= 3 and parts[-2] in SCOPES:
        secret, scope, collection = ":".join(parts[:-2]), parts[-2], parts[-1]
        if not _COLLECTION.fullmatch(collection):
            raise ConfigError(
                f"API key {where}: collection {collection!r} is not a valid name; use 1 to 32 "
                "lower-case letters, digits, '-' or '_', starting with a letter or digit "
                "(it names the key's uploads folder)")
    elif len(parts) >= 2 and parts[-1] in SCOPES:
        secret, scope, collection = ":".join(parts[:-1]), parts[-1], ""
    elif len(parts) == 1:
        secret, scope, collection = entry, "admin", ""
    else:
        # KEY:wirte, KEY:wirte:alice, or an old key that holds ':'
        raise ConfigError(
            f"API key {where} has ':' but no scope after it; write KEY, KEY:SCOPE or "
            f"KEY:SCOPE:COLLECTION with SCOPE one of {', '.join(SCOPES)} (a key that holds "
            "':' itself is written KEY:admin)")
    _check_secret(secret, where)
    if not collection:
        collection = DEFAULT_COLLECTION if scope == "admin" else (
            "key-" + hashlib.sha256(secret.encode()).hexdigest()[:8])
    return ApiKey(secret, scope, collection)


def parse_keys(entries: Sequence[str], where: Sequence[str] = ()) -> tuple[ApiKey, ...]:
    """Every entry's key; ``where[i]`` names entry ``i`` (default: ``1 of N``). The same key
    given twice with different scopes or collections is an error."""
    keys: list[ApiKey] = []
    for i, entry in enumerate(entries):
        label = where[i] if i < len(where) else f"{i + 1} of {len(entries)}"
        key = parse_key(entry, label)
        for j, seen in enumerate(keys):
            if seen.secret == key.secret and seen != key:
                first = where[j] if j < len(where) else f"{j + 1} of {len(entries)}"
                raise ConfigError(f"API key {label} is the key of {first} with another scope "
                                  "or collection; give each key once")
        if key not in keys:
            keys.append(key)
    return tuple(keys)
