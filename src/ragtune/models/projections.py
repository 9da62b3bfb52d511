"""The projections of :mod:`ragtune.models.fast_decode`: one weight matrix held the way
a decode mode multiplies it.

- ``exact``: fp32 matrices, multiplied with ``F.linear``.
- ``fp16``: fp16 weights packed for fbgemm, whose kernels widen them to fp32; activations
  and sums stay fp32.
- ``fast``: matrices on GGUF's 4-bit grid (:func:`grid4`, within 1e-6), repacked into
  torch's int4 layout for decode steps (bf16 activations), with the grid values kept to
  rebuild the fp32 matrix for prefill.
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


@dataclass
class Grid:
    """A matrix ``(n, k)`` held as 4-bit grid values: ``W[i, 32g + j] = scale[i, g] * q +
    low[i, g]`` (a multiply, then an add, in fp32), ``q`` in 0..15. ``codes`` ``(n, k/2)``
    uint8: byte ``16g + j`` of row ``i`` holds ``q`` of column ``32g + j`` in its low nibble
    and of column ``32g + 16 + j`` in its high nibble; ``scale`` and ``low`` ``(n, k/32)``
    fp32."""

    codes: torch.Tensor
    scale: torch.Tensor
    low: torch.Tensor

    @property
    def q(self) -> torch.Tensor:
        """``(n, k/32, 32)`` uint8 grid indices."""
        n = self.codes.shape[0]
        nibbles = self.codes.view(n, -1, GROUP // 2)
        return torch.cat([nibbles & 15, nibbles >> 4], -1)

    def dequantize(self) -> torch.Tensor:
        """The fp32 matrix ``(n, k)``, as GGUF de-quantises it (multiply, then add)."""
        groups = self.q.float().mul_(self.scale[..., None]).add_(self.low[..., None])
        return groups.reshape(self.codes.shape[0], -1)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.codes, self.scale, self.low))


def grid4(weight: torch.Tensor) -> Grid | None:
    """``weight`` as 4-bit grid values (see :class:`Grid`), or ``None`` when it is not on
    such a grid (a full-precision or fine-tuned matrix), so that nothing is approximated.

    GGUF Q4_1 stores ``d`` and ``m`` per block of 32 (fp16) with the block's minimum at
    ``q = 0`` and its maximum at ``q = 15`` (ggml ``quantize_row_q4_1``), so both are
    recovered from the de-quantised values as ``low = min`` and ``scale = (max - min) /
    15``, rounded to fp16 as stored (Q4_0's ``d * (q - 8)`` is the same grid with ``low =
    -8d``). Every rebuilt weight must be within ``1e-6`` of the matrix's largest value; with
    the stored fp16 scale a GGUF matrix is rebuilt bit for bit.
    """
    n, k = weight.shape
    if k % GROUP:
        return None
    groups = weight.detach().float().reshape(n, k // GROUP, GROUP)
    low = groups.amin(-1)
    span = (groups.amax(-1) - low) / 15
    for scale in (span.half().float(), span):  # the stored fp16 value first
        q = torch.round((groups - low[..., None]) / torch.where(scale > 0, scale, 1)[..., None])
        q = q.clamp_(0, 15)
        rebuilt = q * scale[..., None] + low[..., None]
        if float((rebuilt - groups).abs().max()) <= (
                _GRID_TOLERANCE * float(groups.abs().max()) + 1e-12):
            break
    else:
        return None
    q8 = q.to(torch.uint8)
    codes = (q8[..., :GROUP // 2] | (q8[..., GROUP // 2:] << 4)).reshape(n, k // 2)
    return Grid(codes.contiguous(), scale.contiguous(), low.contiguous())


def own_fp32(tensor: torch.Tensor) -> torch.Tensor:
    """An fp32 copy in memory of its own: a view would keep the whole memory-mapped
    checkpoint resident after the transformers model is released."""
    return tensor.detach().float().clone(memory_format=torch.contiguous_format)


@dataclass
class Linear:
    """One projection ``x @ W.T``: fp32, fp16 weights, or 4-bit grid values (see
    :class:`Grid`) repacked for torch's int4 kernel."""

    out_features: int
    weight: torch.Tensor | None = None  # (n, k) fp32, when held in full
    half: Any = None  # fbgemm's packed fp16 weight, in ``fp16`` mode
    half_bytes: int = 0
    grid: Grid | None = None  # the 4-bit grid values (fast mode)
    packed: torch.Tensor | None = None  # torch's int4 layout, for fast decode steps
    scales_zeros: torch.Tensor | None = None  # (k/32, n, 2) bf16: scale, value at q = 8

    @classmethod
    def from_weight(cls, weight: torch.Tensor, mode: DecoderMode) -> Linear:
        if mode == "fp16" and float(weight.detach().abs().max()) < _FP16_MAX:
            half = torch.ops.quantized.linear_prepack_fp16(weight.detach().float(), None)
            return cls(weight.shape[0], half=half, half_bytes=2 * weight.numel())
        grid = grid4(weight) if mode == "fast" else None
        if grid is None:
            return cls(weight.shape[0], weight=own_fp32(weight))
        # torch's CPU int4 kernel de-quantises as (q - 8) * scale + zero, nibbles in order
        q = grid.q.reshape(weight.shape[0], -1).to(torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
        scales_zeros = torch.stack([grid.scale.T, (grid.low + 8 * grid.scale).T], -1)
        return cls(weight.shape[0], grid=grid, packed=packed,
                   scales_zeros=scales_zeros.to(torch.bfloat16).contiguous())

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """``(m, k) -> (m, n)`` for decode steps: the int4 kernel in fast mode, else
        :meth:`full`."""
        if self.packed is not None:
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(
                x.to(torch.bfloat16), self.packed, GROUP, self.scales_zeros)
            return out.float()
        return self.full(x)

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """``(m, k) -> (m, n)`` with fp32 activations and sums (for prefill, and every pass
        outside ``fast`` mode), on the fp32 matrix: held, or rebuilt for this product."""
        if self.weight is not None:
            return F.linear(x, self.weight)
        if self.half is not None:
            return torch.ops.quantized.linear_dynamic_fp16(x, self.half)  # type: ignore[no-any-return]
        assert self.grid is not None
        return F.linear(x, self.grid.dequantize())

    @property
    def nbytes(self) -> int:
        parts = [self.weight, self.packed, self.scales_zeros]
        total = self.half_bytes + sum(p.numel() * p.element_size() for p in parts if p is not None)
        return total + (self.grid.nbytes if self.grid is not None else 0)
