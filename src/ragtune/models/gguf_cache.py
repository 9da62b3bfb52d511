"""GGUF weights loaded through transformers, converted once to safetensors in the user cache.

De-quantising a GGUF file takes tens of seconds; the converted folder loads in about one.
The cache lives in ``$RAGTUNE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ragtune``, else
``~/.cache/ragtune``. Conversions are written to a temporary folder and renamed into
place, so an interrupted conversion never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ragtune.errors import ModelNotInstalledError, RagtuneError
from ragtune.models.offline import ensure_offline
from ragtune.models.registry import BundledModel, require_files

logger = logging.getLogger(__name__)

_CONVERSION_VERSION = 1

# Used when a GGUF file carries no chat template (the gemma-3-270m base model does not).
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(sys='') %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.sys = m['content'] + '\n\n' %}"
    "{% else %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{% if m['role'] == 'user' %}{{ ns.sys }}{% set ns.sys = '' %}{% endif %}"
    "{{ m['content'] | trim }}<end_of_turn>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] | trim }}\n\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def cache_dir() -> Path:
    """The ragtune user cache folder (created on demand by its users, not here)."""
    if os.environ.get("RAGTUNE_CACHE_DIR"):
        return Path(os.environ["RAGTUNE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ragtune"


def _fingerprint(path: Path) -> str:
    """Size plus the hash of the first and last MiB: cheap, and changes with the file."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def bundled_gguf(model: BundledModel) -> Path:
    """The model's single GGUF file; split packages are joined once into the cache."""
    parts = require_files(model)
    if len(parts) == 1:
        return parts[0]
    target = cache_dir() / "gguf" / f"{model.name}.gguf"
    if target.exists() and target.stat().st_size == sum(p.stat().st_size for p in parts):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as out:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    tmp = Path(out.name)
    if model.sha256 and _sha256(tmp) != model.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelNotInstalledError(
            model.name, f"pip install --force-reinstall {model.install_command[12:]}"
        )
    os.replace(tmp, target)
    return target


def converted_model(gguf_path: Path) -> Path:
    """A transformers folder (safetensors) for ``gguf_path``, converting it on first use."""
    return _converted(gguf_path, _target(gguf_path), weights=True)


def converted_tokenizer(gguf_path: Path) -> Path:
    """A folder with the tokenizer, chat template and config of ``gguf_path``: what the
    llama.cpp generator needs beside the GGUF file it runs. The whole conversion when one
    was made; else these alone, written on first use (gemma-3-270m: about half the time of
    the whole conversion, and no de-quantised weights on disk)."""
    whole = _target(gguf_path)
    if (whole / "ragtune-conversion.json").exists():
        return whole
    return _converted(gguf_path, whole.with_name(whole.name + "-tokenizer"), weights=False)


def _target(gguf_path: Path) -> Path:
    if not gguf_path.is_file():
        raise RagtuneError(f"GGUF file {gguf_path} does not exist")
    key = f"{gguf_path.stem}-{_fingerprint(gguf_path)}-v{_CONVERSION_VERSION}"
    return cache_dir() / "converted" / key


def _converted(gguf_path: Path, target: Path, *, weights: bool) -> Path:
    """``target``, written from ``gguf_path`` on first use through a temporary folder."""
    if (target / "ragtune-conversion.json").exists():
        return target
    logger.info("converting %s to %s in %s (once)", gguf_path.name,
                "safetensors" if weights else "a tokenizer", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        _convert(gguf_path, tmp, weights=weights)
        (tmp / "ragtune-conversion.json").write_text(
            json.dumps({"source": gguf_path.name, "fingerprint": target.name}, indent=2)
        )
        try:
            os.replace(tmp, target)
        except OSError:  # another process converted it first
            if not (target / "ragtune-conversion.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf_path: Path, out: Path, *, weights: bool = True) -> None:
    ensure_offline()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_path.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
    if weights:
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), **kwargs)
        config = model.config
    else:
        config = AutoConfig.from_pretrained(str(gguf_path.parent), **kwargs)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if not getattr(tokenizer, "chat_template", None):
        is_gemma = config.model_type.startswith("gemma")
        tokenizer.chat_template = GEMMA_CHAT_TEMPLATE if is_gemma else PLAIN_CHAT_TEMPLATE
        if is_gemma and weights:
            end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
            eos = model.generation_config.eos_token_id
            eos_ids = eos if isinstance(eos, list) else [eos]
            if isinstance(end_of_turn, int) and end_of_turn not in eos_ids:
                model.generation_config.eos_token_id = [*eos_ids, end_of_turn]
    if weights:
        # The de-quantised weights are plain tensors; drop the GGUF quantizer marker so
        # that save_pretrained writes them as an ordinary checkpoint.
        model.hf_quantizer = None  # type: ignore[assignment]
        model.save_pretrained(str(out))
    else:
        config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
