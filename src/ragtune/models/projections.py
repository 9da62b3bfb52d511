"""The projections of :mod:`ragtune.models.fast_decode`: one weight matrix held the way
a decode mode multiplies it.

- ``exact``: fp32, multiplied with ``F.linear``.
- ``fp16``: fp16 weights packed for fbgemm, whose kernels widen them to fp32; activations
  and sums stay fp32.
- ``fast``: matrices whose values lie on GGUF's 4-bit grid (:func:`grid4`), repacked into
  torch's int4 layout for decode steps (bf16 activations), with the nibbles kept to
  rebuild the exact fp32 values for prefill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

DecoderMode = Literal["fast", "fp16", "exact"]
GROUP = 32  # values per int4 group, as in GGUF's Q4 blocks
_GRID_TOLERANCE = 1e-6  # relative to the matrix's largest value
_FP16_MAX = 65504.0  # a weight beyond fp16's range keeps its fp32 matrix


def bf16_supported() -> bool:
    """Whether this CPU has fast bf16 kernels (the int4 kernel runs in bf16)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fp16_supported() -> bool:
    """Whether torch has fbgemm's fp16-weight products (x86 CPUs): fp16 weights widened to
    fp32 inside the kernel, fp32 activations and sums."""
    return "fbgemm" in torch.backends.quantized.supported_engines


def grid4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """``(q, scale, low)`` with ``weight == q * scale + low`` per group of 32 input values,
    ``q`` in 0..15, ``(n, k)`` uint8 and ``(n, k/32)`` fp32; ``None`` when the weight is not
    on such a grid (a full-precision or fine-tuned matrix), so that nothing is approximated.

    GGUF Q4_1 stores ``d`` and ``m`` per block of 32 with the block's minimum at ``q = 0``
    and its maximum at ``q = 15`` (ggml ``quantize_row_q4_1``), so both are recovered from
    the de-quantised values as ``low = min`` and ``scale = (max - min) / 15``.
    """
    n, k = weight.shape
    if k % GROUP:
        return None
    groups = weight.detach().float().reshape(n, k // GROUP, GROUP)
    low = groups.amin(-1)
    scale = (groups.amax(-1) - low) / 15
    q = torch.round((groups - low[..., None]) / torch.where(scale > 0, scale, 1)[..., None])
    q = q.clamp_(0, 15)
    error = (q * scale[..., None] + low[..., None] - groups).abs().max()
    if float(error) > _GRID_TOLERANCE * float(groups.abs().max()) + 1e-12:
        return None
    return q.to(torch.uint8).reshape(n, k), scale, low


def own_fp32(tensor: torch.Tensor) -> torch.Tensor:
    """An fp32 copy in memory of its own: a view would keep the whole memory-mapped
    checkpoint resident after the transformers model is released."""
    return tensor.detach().float().clone(memory_format=torch.contiguous_format)


@dataclass
class Linear:
    """One projection ``x @ W.T``: fp32, fp16 weights, or 4-bit grid values (see
    :func:`grid4`)."""

    out_features: int
    weight: torch.Tensor | None = None  # (n, k) fp32, when not packed
    half: Any = None  # fbgemm's packed fp16 weight, in ``fp16`` mode
    half_bytes: int = 0
    packed: torch.Tensor | None = None  # torch's int4 layout, for decode steps
    scales_zeros: torch.Tensor | None = None  # (k/32, n, 2) bf16: scale, value at q = 8
    nibbles: torch.Tensor | None = None  # (n, k/2) uint8, for exact fp32 prefill
    scale: torch.Tensor | None = None  # (n, k/32) fp32
    low: torch.Tensor | None = None  # (n, k/32) fp32

    @classmethod
    def from_weight(cls, weight: torch.Tensor, mode: DecoderMode) -> Linear:
        if mode == "fp16" and float(weight.detach().abs().max()) < _FP16_MAX:
            half = torch.ops.quantized.linear_prepack_fp16(weight.detach().float(), None)
            return cls(weight.shape[0], half=half, half_bytes=2 * weight.numel())
        grid = grid4(weight) if mode == "fast" else None
        if grid is None:
            return cls(weight.shape[0], weight=own_fp32(weight))
        q, scale, low = grid
        # torch's CPU int4 kernel de-quantises as (q - 8) * scale + zero
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 2)
        scales_zeros = torch.stack([scale.T, (low + 8 * scale).T], -1)
        return cls(weight.shape[0], packed=packed,
                   scales_zeros=scales_zeros.to(torch.bfloat16).contiguous(),
                   nibbles=(q[:, 0::2] | (q[:, 1::2] << 4)).contiguous(), scale=scale, low=low)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """``(m, k) -> (m, n)`` for decode: the int4 kernel where packed."""
        if self.packed is None:
            return self.full(x)
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.to(torch.bfloat16), self.packed, GROUP, self.scales_zeros)
        return out.float()

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """``(m, k) -> (m, n)`` with fp32 activations and sums (for prefill, and every pass
        outside ``fast`` mode)."""
        if self.weight is not None:
            return F.linear(x, self.weight)
        if self.half is not None:
            return torch.ops.quantized.linear_dynamic_fp16(x, self.half)  # type: ignore[no-any-return]
        assert self.nibbles is not None and self.scale is not None and self.low is not None
        q = torch.stack([self.nibbles & 15, self.nibbles >> 4], -1)
        n = self.out_features
        groups = q.reshape(n, -1, GROUP).float().mul_(self.scale[..., None])
        return F.linear(x, groups.add_(self.low[..., None]).reshape(n, -1))

    @property
    def nbytes(self) -> int:
        parts = [self.weight, self.packed, self.scales_zeros, self.nibbles, self.scale, self.low]
        return self.half_bytes + sum(p.numel() * p.element_size() for p in parts if p is not None)
