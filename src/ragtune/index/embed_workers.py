"""Embedding an ingest's chunks elsewhere: in worker processes on this machine
(``ragtune ingest --workers N``) or on a Ray cluster with Ray Data (``--ray ADDRESS``).

Only the embedding moves. The ingest's own process still finds, reads and chunks the
files (counting tokens with its own copy of the embedder's tokenizer), and it alone writes
the store and the record of sources, in the same batches and order as without workers, so
the knowledge base, its sync and its crash safety are those of a plain ingest. Each worker
builds the embedder once from the knowledge base's own settings (the registered backend,
model and precision of its manifest; a custom embedder object is sent pickled), so its
vectors are the ones this process would compute: exactly, for an embedder whose vector of
a text does not depend on the other texts of its batch (fp32, and the native int8 kernel,
which scales activations per token).

Ray: each batch of chunks (``ingest.batch_chunks``, at least :data:`RAY_MIN_BATCH`) is one
Ray Data dataset mapped with ``map_batches`` over a pool of embedding actors. ``ADDRESS``
is ``local`` (start a Ray instance on this machine), ``auto`` (the cluster this machine
belongs to) or ``ray://HOST:10001``; every node needs ragtune and the embedder installed.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ragtune.errors import ConfigError
from ragtune.models.protocol import Embedder

logger = logging.getLogger(__name__)

__all__ = ["ProcessEmbedder", "RayEmbedder", "embedding"]

RAY_MIN_BATCH = 4096  # chunks a Ray dataset: its actors start (and load the model) per batch
# texts per map_batches call: the embedder tokenizes and sorts up to 512 texts at a time
_RAY_ROWS = 512


def given(embedder: Embedder) -> Embedder:
    """A recipe (with :func:`functools.partial`) for an embedder object sent as it is."""
    return embedder


def _check_ray() -> None:
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("--ray needs Ray Data: pip install 'ragtune[ray]'") from None


def _check_picklable(build: Callable[[], Embedder]) -> None:
    try:
        pickle.dumps(build)
    except Exception as exc:
        raise ConfigError(
            f"the knowledge base's embedder cannot be sent to worker processes ({exc}); "
            "ingest without --workers/--ray, or use a registered embedder backend") from None


class _Delegating:
    """What the ingest asks of an embedder besides ``embed`` goes to this process's copy."""

    def __init__(self, local: Embedder) -> None:
        self.local = local
        self.name = local.name
        self.dimension = local.dimension

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def __getattr__(self, name: str) -> Any:  # embed_queries, max_tokens and the like
        return getattr(self.local, name)


# -- worker processes ---------------------------------------------------------------------

# one embedder per worker process, built by the pool's initializer: a process-wide value
# is how a ProcessPoolExecutor worker keeps state between tasks
_WORKER: dict[str, Embedder] = {}


def _start_worker(build: Callable[[], Embedder], threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # an embedder without torch
        pass
    _WORKER["embedder"] = build()


def _embed_in_worker(texts: list[str]) -> np.ndarray:
    return _WORKER["embedder"].embed(texts)


def _cores() -> int:
    """The cores this process may run on (a container's limit, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ProcessEmbedder(_Delegating):
    """``embed`` split over ``workers`` spawned processes, each with its own embedder and
    ``cores // workers`` threads; vectors come back in the texts' order.

    Example:
        >>> build = functools.partial(build_embedder, settings)  # doctest: +SKIP
        >>> with ProcessEmbedder(emb, build, workers=2) as e:  # doctest: +SKIP
        ...     e.embed(texts).shape
        (1000, 384)
    """

    def __init__(self, local: Embedder, build: Callable[[], Embedder], workers: int,
                 threads: int | None = None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        super().__init__(local)
        _check_picklable(build)
        self.workers = workers
        threads = threads or max(1, _cores() // workers)
        self._pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(build, threads))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        bounds = np.linspace(0, len(texts), self.workers + 1).astype(int)
        parts = [list(texts[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
                 if b > a]
        return np.concatenate(list(self._pool.map(_embed_in_worker, parts)))

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ProcessEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- Ray Data ------------------------------------------------------------------------------

class _RayEmbed:
    """The Ray Data actor: builds the embedder once, then embeds each batch of rows."""

    def __init__(self, build: Callable[[], Embedder]) -> None:
        self.embedder = build()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        return {"row": batch["row"], "vector": self.embedder.embed(texts)}


class RayEmbedder(_Delegating):
    """``embed`` as a Ray Data ``map_batches`` over ``workers`` embedding actors."""

    def __init__(self, local: Embedder, build: Callable[[], Embedder], address: str,
                 workers: int) -> None:
        super().__init__(local)
        _check_picklable(build)
        _check_ray()
        self.build = build
        self.workers = workers
        self.address = address
        self._owns = False
        self._joined = False

    def _join(self) -> None:
        """Connect on the first batch (not while files are being read, whose errors are
        reported per file)."""
        import warnings

        import ray
        import ray.data

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
        self._owns = not ray.is_initialized()
        if self._owns:
            try:
                with warnings.catch_warnings():  # Ray's processes are forked and exec'd at
                    warnings.filterwarnings(  # once, which LanceDB's warning is not about
                        "ignore", message="lancedb fork support", category=RuntimeWarning)
                    ray.init(address=None if self.address == "local" else self.address,
                             include_dashboard=False, log_to_driver=False,
                             logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"cannot join the Ray cluster at {self.address!r} ({exc}); "
                                  "give --ray local, auto, or ray://HOST:10001") from None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the ingest has its own progress bar
        context.print_on_execution_start = False
        self._joined = True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import ray.data

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if not self._joined:
            self._join()
        rows = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
        mapped = rows.map_batches(_RayEmbed, fn_constructor_args=(self.build,),
                                  compute=ray.data.ActorPoolStrategy(size=self.workers),
                                  batch_size=_RAY_ROWS, batch_format="numpy")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        done = 0
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            out[np.asarray(batch["row"], dtype=np.int64)] = np.stack(list(batch["vector"]))
            done += len(batch["row"])
        if done != len(texts):
            raise RuntimeError(f"Ray returned {done} vectors for {len(texts)} texts")
        return out

    def close(self) -> None:
        if self._owns:
            import ray

            ray.shutdown()


@contextmanager
def embedding(local: Callable[[], Embedder], build: Callable[[], Embedder], *,
              workers: int = 1, ray: str | None = None) -> Iterator[Callable[[], Embedder]]:
    """The embedder factory an ingest uses: this process's embedder, or workers (started
    on first use, so a sync with nothing to embed starts none) that stop on exit."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers == 1 and not ray:
        yield local
        return
    # what can be checked before any file is read: the errors of files are per file
    _check_picklable(build)
    if ray:
        _check_ray()
    started: list[ProcessEmbedder | RayEmbedder] = []

    def factory() -> Embedder:
        if not started:
            started.append(RayEmbedder(local(), build, ray, workers) if ray
                           else ProcessEmbedder(local(), build, workers))
            logger.info("embedding in %d %s", workers,
                        f"Ray actors ({ray})" if ray else "worker processes")
        return started[0]

    try:
        yield factory
    finally:
        for pool in started:
            pool.close()

