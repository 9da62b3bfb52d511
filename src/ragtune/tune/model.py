"""The model side of training: loading the base with LoRA (or QLoRA), the answer-only
loss, precision choice and batched greedy generation for evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.tune.config import TrainConfig
from ragtune.tune.encode import IGNORE
from ragtune.types import Message

__all__ = ["answer_loss", "generate_batch", "load_lora_model", "resolve_precision"]


def resolve_precision(precision: str, device: str) -> str:
    import torch

    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    # bf16 pays on CPUs with AMX tiles; with AVX-512 bf16 alone a LoRA step of
    # SmolLM2-135M took 17.7 s in bf16 against 11.7 s in fp32 (1,695 tokens, 2 cores)
    return "bf16" if torch.cpu._is_amx_tile_supported() else "fp32"


def generate_batch(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Message]],
                   max_new_tokens: int, batch_size: int = 16,
                   precision: str = "fp32") -> list[str]:
    """Greedy answers for chat prompts, several decoded at once (left padding)."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    answers: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [tokenizer.apply_chat_template(list(p), tokenize=False,
                                                   add_generation_prompt=True)
                     for p in prompts[start:start + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True,
                            add_special_tokens=False).to(device)
            with torch.inference_mode(), torch.autocast(
                    device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     temperature=None, top_p=None, top_k=None,
                                     pad_token_id=tokenizer.pad_token_id)
            width = enc["input_ids"].shape[1]
            answers += [tokenizer.decode(o[width:], skip_special_tokens=True).strip()
                        for o in out]
    finally:
        tokenizer.padding_side = side
    return answers


# answer positions projected onto the vocabulary at a time: the logits of one slice are
# recomputed in the backward pass instead of kept (gemma-3's 262k vocabulary makes the
# logits of a whole batch several GB)
_LOSS_SLICE = 1024


def _slice_loss(head: Any, hidden: Any, labels: Any, cap: float | None) -> Any:
    import torch
    import torch.nn.functional as F

    logits = head(hidden).float()
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return F.cross_entropy(logits, labels, reduction="sum")


def answer_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Summed cross-entropy of the answer tokens, projecting only those positions onto the
    vocabulary, a slice at a time (the full ``(tokens, vocabulary)`` logits are never
    built, in the forward or the backward pass)."""
    from torch.utils.checkpoint import checkpoint

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(causal, causal.base_model_prefix)
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    if not bool(keep.any()):
        return None
    hidden = decoder(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                     use_cache=False).last_hidden_state
    picked = hidden[:, :-1][keep]
    targets = labels[keep]
    head = causal.get_output_embeddings()
    cap = getattr(causal.config, "final_logit_softcapping", None)
    total = None
    for start in range(0, picked.shape[0], _LOSS_SLICE):
        end = start + _LOSS_SLICE
        part = checkpoint(_slice_loss, head, picked[start:end], targets[start:end], cap,
                          use_reentrant=False)
        total = part if total is None else total + part
    return total


def check_qlora(device: str) -> None:
    if device != "cuda":
        raise ConfigError(
            "--qlora loads the base model in 4-bit with bitsandbytes, which needs a CUDA GPU; "
            "this machine has none, so train plain LoRA (drop --qlora): a 135M-270M model "
            "fits in memory without quantisation")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ConfigError("--qlora needs bitsandbytes: pip install bitsandbytes") from exc


def load_lora_model(base_path: Path, cfg: TrainConfig, device: str, precision: str) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype,
                              "attn_implementation": "sdpa"}
    if cfg.qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": torch.cuda.current_device()}  # a DDP rank's own GPU
    model: Any = AutoModelForCausalLM.from_pretrained(str(base_path), **kwargs)
    if cfg.qlora:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    else:
        model.to(device)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    # adapter weights stay in fp32 (PEFT's default) while the frozen base is bf16
    return get_peft_model(model, lora)
