"""Components by name, one registry per role, all read from entry points.

Every role (generators, embedders, stores, loaders, rerankers, pipelines) has an
entry-point group ``ragtune.<role>``. ragtune's own components are declared there in its
``pyproject.toml``; a plugin declares its own the same way, so built-ins and plugins take
one path::

    [project.entry-points."ragtune.generators"]
    my-engine = "my_package.engine:MyGenerator.from_settings"

Settings name components by registry name, never by import path, so a config file (or a
server request) cannot import arbitrary code. An unknown name is an error that lists the
registered ones.

Example:
    >>> LOADERS = Registry("loaders", "file type")
    >>> ".pdf" in LOADERS
    True
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from ragtune.errors import ConfigError, UnknownComponentError

__all__ = ["ROLES", "Registry"]

ROLES = ("generators", "embedders", "stores", "loaders", "rerankers", "pipelines")

T = TypeVar("T")


@lru_cache(maxsize=64)
def _entry_points(group: str, path: tuple[str, ...]) -> dict[str, EntryPoint]:
    """The group's entry points by name; ``path`` (``sys.path``) keys the cache, so a
    distribution put on the path later is seen."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        if ep.name in found and found[ep.name].value != ep.value:
            owners = [x.dist.name if x.dist else "?" for x in (found[ep.name], ep)]
            raise ConfigError(
                f"two installed packages register {ep.name!r} in {group}: {owners[0]} "
                f"({found[ep.name].value}) and {owners[1]} ({ep.value}); uninstall one")
        found[ep.name] = ep
    return found


class Registry(Mapping[str, T], Generic[T]):
    """The components of one role by name: a read-only mapping that imports a component
    only when it is looked up.

    ``role`` is one of :data:`ROLES`; ``what`` names a component in error messages
    ("generator backend", "file type").
    """

    def __init__(self, role: str, what: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        self.role = role
        self.what = what
        self.group = f"ragtune.{role}"

    def _found(self) -> dict[str, EntryPoint]:
        return _entry_points(self.group, tuple(sys.path))

    def targets(self) -> dict[str, str]:
        """Registered names and what each points to (``module:attribute``)."""
        return {name: ep.value for name, ep in sorted(self._found().items())}

    def __getitem__(self, name: str) -> T:
        found = self._found()
        if not found:
            raise ConfigError(
                f"no {self.what} is registered (entry-point group {self.group} is empty): "
                "ragtune's package metadata is missing; install it (pip install -e .) "
                "instead of running it from the source folder")
        if name not in found:
            raise UnknownComponentError(self.what, name, found)
        return found[name].load()  # type: ignore[no-any-return]

    def __contains__(self, name: object) -> bool:
        return name in self._found()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._found()))

    def __len__(self) -> int:
        return len(self._found())

    def __repr__(self) -> str:
        return f"Registry({self.role!r}: {', '.join(self)})"
