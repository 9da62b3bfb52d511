"""Native CPU kernels for the embedder, compiled once per machine.

The C++ sources in ``csrc/`` are built with the system's C++ compiler through
``torch.utils.cpp_extension`` (ninja, the compiler and torch's own headers) the first time
the embedder asks for them, into ``<ragtune cache>/kernels``; later processes load the
built library in well under a second. They register ``torch.ops.ragtune.*`` and run on
torch's own thread pool (``at::parallel_for``), so they never compete with it for the cores.

- ``int8_pack(weight)`` and ``int8_linear(x, packed, scale, sum, bias, activation)``: an
  int8 linear layer with activations scaled per row and GELU optionally applied inside
  (``csrc/int8_linear.cpp``; needs AVX-512 VNNI, ``int8_vnni_supported()``).
- ``encoder_attention(q, k, v, lengths, scale)``: bidirectional fp32 attention over
  right-padded texts (``csrc/attention.cpp``).
- ``add_layer_norm(x, residual, weight, bias, eps)``: BERT's residual add and layer norm in
  one pass (``csrc/int8_linear.cpp``).

The kernels need AVX-512 (checked with ``torch.backends.cpu.get_cpu_capability``). Where
they cannot be used (another CPU, no compiler, a failed build, or
``RAGTUNE_NATIVE_KERNELS=0``) :func:`native_kernels` returns ``None`` and logs why once;
the embedder then uses torch's int8 layers and attention.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SOURCES = ("attention.cpp", "int8_linear.cpp")
_FLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma",
          "-ffp-contract=off", "-fopenmp"]
_STALE_LOCK_S = 600  # a build takes about 15 s; a lock this old was left by a killed one
_lock = threading.Lock()


def unavailable() -> str | None:
    """Why the kernels cannot run on this machine, or ``None`` when they can be built."""
    if os.environ.get("RAGTUNE_NATIVE_KERNELS", "1").strip().lower() in {"0", "false", "off"}:
        return "RAGTUNE_NATIVE_KERNELS is off"
    if sys.platform != "linux":
        return f"platform {sys.platform} (the kernels are built on Linux)"
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if "AVX512" not in capability and "AMX" not in capability:
        return f"this CPU's vector unit is {capability} (the kernels need AVX-512)"
    return None


def native_kernels() -> Any | None:
    """``torch.ops.ragtune`` with the kernels loaded, or ``None`` (the reason logged)."""
    reason = unavailable()
    if reason is not None:
        _log_once(reason)
        return None
    return _load()


@functools.cache
def _log_once(reason: str) -> None:
    logger.info("native CPU kernels off: %s; the embedder uses torch's int8 layers", reason)


@contextlib.contextmanager
def _ninja_on_path() -> Iterator[None]:
    """``PATH`` with the ``ninja`` of the ``ninja`` package (in the environment's ``bin``,
    which is not on ``PATH`` when the environment is not activated), for the build only."""
    old = os.environ.get("PATH", "")
    try:
        import ninja

        os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, old])
    except ImportError:  # a system ninja may still be on PATH
        pass
    try:
        yield
    finally:
        os.environ["PATH"] = old


@functools.cache
def _load() -> Any | None:
    import torch
    from torch.utils.cpp_extension import load

    from ragtune.models.gguf_cache import cache_dir

    source_dir = Path(__file__).with_name("csrc")
    python = f"{sys.version_info[0]}{sys.version_info[1]}"
    build = cache_dir() / "kernels" / f"torch-{torch.__version__}-py{python}"
    with _lock, _ninja_on_path():
        try:
            build.mkdir(parents=True, exist_ok=True)
            lock = build / "lock"  # torch's build lock; one left by a killed build blocks all
            if lock.exists() and time.time() - lock.stat().st_mtime > _STALE_LOCK_S:
                lock.unlink(missing_ok=True)
            if not (build / "ragtune_kernels.so").exists():
                logger.info("building ragtune's native CPU kernels once (about 15 s)")
            started = time.perf_counter()
            # torch rebuilds when the sources or flags change; the hash covers the headers
            digest = hashlib.sha256(b"".join(
                p.read_bytes() for p in sorted(source_dir.iterdir()) if p.is_file())).hexdigest()
            load(name="ragtune_kernels", sources=[str(source_dir / s) for s in SOURCES],
                 extra_cflags=[*_FLAGS, f"-DRAGTUNE_SOURCES={digest[:16]}"],
                 extra_ldflags=["-fopenmp"], build_directory=str(build),
                 is_python_module=False, verbose=False)
            logger.debug("native kernels ready in %.1f s", time.perf_counter() - started)
        except Exception as exc:  # no compiler, no ninja, a failed build: decode without them
            logger.warning("could not build ragtune's native CPU kernels (%s); the embedder "
                           "uses torch's int8 layers instead. Install a C++ compiler (g++) "
                           "and ninja (pip install ninja) to use them.",
                           str(exc).strip().splitlines()[-1] if str(exc).strip() else exc)
            return None
    return torch.ops.ragtune
