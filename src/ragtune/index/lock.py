"""An exclusive writer lock on a knowledge-base folder (``fcntl.flock`` on ``.lock``)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragtune.errors import KnowledgeBaseError


@contextmanager
def write_lock(folder: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the folder's writer lock; wait up to ``timeout_s`` for another writer to finish.

    The kernel releases the lock when its holder dies, so a killed ingest never leaves a
    stale lock behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KnowledgeBaseError(
                        f"another process is writing to the knowledge base {folder} (waited "
                        f"{timeout_s:.0f} s for its lock); try again when it has finished"
                    ) from None
                time.sleep(delay)  # polling a kernel lock; nothing to synchronise on here
                delay = min(delay * 2, 1.0)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
