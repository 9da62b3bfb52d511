"""A PEFT LoRA adapter written as a GGUF LoRA file, the form llama.cpp loads.

The tensors are renamed to llama.cpp's (``blk.N.attn_q.weight.lora_a``), and the output
side (B) of the query and key projections is permuted the way llama.cpp's own
``convert_hf_to_gguf.py`` permutes those weights for its rotary embedding, as its
``convert_lora_to_gguf.py`` does. Llama-architecture models (SmolLM2) and Gemma 3
(gemma-3-270m, whose weights llama.cpp keeps in the transformers row order, so nothing is
permuted).
Conversions are cached beside the GGUF weights' cache, keyed by the adapter's hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ragtune.errors import ConfigError
from ragtune.models.gguf_cache import cache_dir

# PEFT module path → llama.cpp tensor name
_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PREFIX = "base_model.model.model.layers."
# transformers model_type → llama.cpp architecture, and whether q/k rows are permuted
_ARCHES = {"llama": ("llama", True), "gemma3_text": ("gemma3", False)}


def _permute(b: np.ndarray, n_head: int) -> np.ndarray:
    """Rows of a query/key projection in llama.cpp's rotary order."""
    return (b.reshape(n_head, 2, b.shape[0] // n_head // 2, *b.shape[1:])
            .swapaxes(1, 2).reshape(b.shape))


def write_gguf_lora(adapter: Path, base: Path, out: Path) -> None:
    """Write the PEFT adapter folder ``adapter`` (trained on the transformers folder
    ``base``) as the GGUF LoRA file ``out``."""
    import gguf
    from safetensors.numpy import load_file

    base_config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("use_dora") or config.get("use_rslora"):
        raise ConfigError(f"{adapter}: DoRA and rsLoRA adapters cannot be exported to GGUF")
    model_type = base_config.get("model_type")
    if model_type not in _ARCHES:
        raise ConfigError(f"{adapter}: GGUF LoRA export covers {', '.join(_ARCHES)} models, "
                          f"not {model_type!r}; run it with --generator local")
    arch, permute = _ARCHES[str(model_type)]
    heads = {"attn_q": int(str(base_config["num_attention_heads"])),
             "attn_k": int(str(base_config.get("num_key_value_heads")
                               or base_config["num_attention_heads"]))} if permute else {}
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(config["lora_alpha"]))
    for key, value in sorted(load_file(str(adapter / "adapter_model.safetensors")).items()):
        layer, _, rest = key.removeprefix(_PREFIX).partition(".")
        module, _, side = rest.rpartition(".lora_")
        side = side.split(".")[0].lower()
        if not key.startswith(_PREFIX) or module not in _NAMES or side not in ("a", "b"):
            raise ConfigError(f"{adapter}: tensor {key!r} has no llama.cpp counterpart")
        name = _NAMES[module]
        value = value.astype(np.float32)
        if side == "b" and name in heads:
            value = _permute(value, heads[name])
        writer.add_tensor(f"blk.{layer}.{name}.weight.lora_{side}", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def gguf_lora(adapter: Path, base: Path) -> Path:
    """The cached GGUF LoRA file of ``adapter``, written on first use."""
    digest = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    target = cache_dir() / "gguf-lora" / f"{adapter.name}-{digest[:16]}.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    try:
        write_gguf_lora(adapter, base, Path(tmp))
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
