"""The embedder's attention on ragtune's native kernel (``encoder_attention`` in
``csrc/attention.cpp``), through transformers' attention interface.

For right-padded texts (what the tokenizer of a sentence-transformers model gives) every
query attends to its text's real tokens, padded keys never read; sums, softmax and output
in fp32, the two products in fp32 or, on CPUs with AVX-512 BF16, with bf16 inputs
(``vdpbf16ps``: twice the products per instruction; outputs within about 0.2% of fp32).
Anything else (a causal or cross-attention layer, another mask, training, another dtype
or head size) goes to transformers' own SDPA function.
"""

from __future__ import annotations

from typing import Any

import torch

from ragtune.models.kernels import native_kernels

NAME = "ragtune_encoder"
_HEAD_DIMS = (32, 64, 128)


def use_native_attention(model: Any, *, bf16: bool = False) -> bool:
    """Switch the transformers models inside ``model`` (a ``SentenceTransformer`` or a
    ``PreTrainedModel``) to the native attention, with bf16 products where ``bf16`` and
    the CPU has them; ``False`` where it is not available."""
    kernels = native_kernels()
    if kernels is None:
        return False
    use_bf16 = bf16 and bool(kernels.bf16_dot_supported())
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, _attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # the padding mask, as SDPA gets it
    switched = False
    for module in model.modules():
        config = getattr(module, "config", None)
        if hasattr(module, "set_attn_implementation") and getattr(config, "is_decoder",
                                                                  True) is False:
            module.set_attn_implementation(NAME)
            switched = True
        if hasattr(module, "attention_head_size"):  # a self-attention layer
            module.ragtune_bf16 = use_bf16
    return switched


def _lengths(mask: torch.Tensor | None, batch: int, length: int) -> torch.Tensor | None:
    """Each text's real tokens from a boolean padding mask ``(b, 1, q, k)`` that keeps a
    prefix of the keys (``None``: no padding), or ``None`` for any other mask."""
    if mask is None:
        return torch.full((batch,), length, dtype=torch.long)
    if mask.dtype != torch.bool or mask.dim() != 4 or mask.shape[-1] != length:
        return None
    keys = mask[:, 0, 0, :]
    lengths = keys.sum(-1)
    if not torch.equal(keys, torch.arange(length)[None, :] < lengths[:, None]):
        return None
    return lengths.to(torch.long)


def _attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, dropout: float = 0.0,
               scaling: float | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention function signature: ``query`` ``(b, heads, l, d)``; returns
    ``(b, l, heads, d)``."""
    kernels = native_kernels()
    b, _, length, d = query.shape
    lengths = None
    if (kernels is not None and not module.training and not getattr(module, "is_causal", False)
            and query.dtype == torch.float32 and d in _HEAD_DIMS
            and key.shape == query.shape == value.shape):
        lengths = _lengths(attention_mask, b, length)
    if lengths is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask,  # type: ignore[no-any-return]
                                      dropout=dropout, scaling=scaling, **kwargs)
    assert kernels is not None
    scale = scaling if scaling is not None else d ** -0.5
    out = kernels.encoder_attention(query.transpose(1, 2).contiguous(),
                                    key.transpose(1, 2).contiguous(),
                                    value.transpose(1, 2).contiguous(), lengths, scale,
                                    bool(getattr(module, "ragtune_bf16", False)))
    return out, None
