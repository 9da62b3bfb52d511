"""int8 linear layers for the embedder: ragtune's native kernel where the CPU has AVX-512
VNNI, torch's dynamic int8 linear (fbgemm) elsewhere.

Both hold weights as int8 per output channel and multiply int8 activations in int32. They
differ in how activations are scaled:

- **native** (``csrc/int8_linear.cpp``): one scale per row, that is per token, so a
  text's vector depends on that text alone, whatever else is in its batch;
- **fbgemm** (``torch.ao.quantization.quantize_dynamic``): one scale per batch, so an
  outlier in one text coarsens the others, and a vector changes slightly with its batch.

``bench/embed_speed.py`` measures both against the fp32 model on SciFact.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from ragtune.models.kernels import native_kernels

logger = logging.getLogger(__name__)


def int8_kernels() -> Any | None:
    """``torch.ops.ragtune`` where its int8 kernel runs on this CPU (AVX-512 VNNI), else
    ``None``."""
    kernels = native_kernels()
    if kernels is None or not kernels.int8_vnni_supported():
        return None
    return kernels


class Int8Linear(torch.nn.Module):
    """An ``nn.Linear`` on the native int8 kernel: weights int8 per output channel (packed
    once), activations int8 per row, int32 sums, fp32 out.

    Example::

        layer = Int8Linear(torch.nn.Linear(384, 1536), int8_kernels())
        layer(torch.randn(8, 20, 384)).shape  # (8, 20, 1536)
    """

    def __init__(self, linear: torch.nn.Linear, kernels: Any, *, gelu: bool = False) -> None:
        """``gelu``: apply GELU (the erf form) to the output inside the kernel."""
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        packed, scale, sums = kernels.int8_pack(linear.weight.detach().float())
        self.register_buffer("packed", packed)
        self.register_buffer("scale", scale)
        self.register_buffer("sums", sums)
        bias = linear.bias.detach().float().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        self._kernels = kernels
        self.gelu = gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._kernels.int8_linear(  # type: ignore[no-any-return]
            x.float(), self.packed, self.scale, self.sums, self.bias, int(self.gelu))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, int8 per "
                f"row{', gelu' if self.gelu else ''}")


def quantize_linear_layers(model: Any) -> str:
    """Replace every ``nn.Linear`` of ``model`` in place by an int8 one; returns the kernel
    used, ``"native"`` or ``"fbgemm"`` (see the module docstring)."""
    kernels = int8_kernels()
    if kernels is None:
        with warnings.catch_warnings():  # torch points eager quantisation users to torchao
            warnings.simplefilter("ignore")
            torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                inplace=True)
        return "fbgemm"
    _swap(model, kernels)
    return "native"


class ResidualNorm(torch.nn.Module):
    """A BERT output block, ``LayerNorm(dense(hidden) + residual)``, with the add and the
    norm as one pass (``add_layer_norm``); dropout is left out (inference only)."""

    def __init__(self, dense: torch.nn.Module, norm: torch.nn.LayerNorm, kernels: Any) -> None:
        super().__init__()
        self.dense, self.LayerNorm = dense, norm
        self._kernels = kernels

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        norm = self.LayerNorm
        return self._kernels.add_layer_norm(  # type: ignore[no-any-return]
            self.dense(hidden_states), input_tensor.float(), norm.weight, norm.bias, norm.eps)


def _residual_norm(module: Any) -> bool:
    """Whether ``module`` is a BERT output block: dense, dropout, then the norm of the sum
    with its input (``BertSelfOutput``, ``BertOutput`` and their copies)."""
    return (type(module).__name__.endswith("Output") and not module.training
            and isinstance(getattr(module, "dense", None), torch.nn.Linear)
            and isinstance(getattr(module, "LayerNorm", None), torch.nn.LayerNorm)
            and getattr(module.LayerNorm, "elementwise_affine", False)
            and isinstance(getattr(module, "dropout", None), torch.nn.Dropout))


def _erf_gelu(module: Any) -> bool:
    """Whether ``module`` is transformers' GELU in its exact (erf) form."""
    return type(module).__name__ == "GELUActivation" and \
        getattr(module, "act", None) is torch.nn.functional.gelu


def _swap(module: torch.nn.Module, kernels: Any) -> None:
    # a BERT-style intermediate block (dense, then GELU): the GELU goes into the kernel
    dense, act = getattr(module, "dense", None), getattr(module, "intermediate_act_fn", None)
    if isinstance(dense, torch.nn.Linear) and _erf_gelu(act):
        module.dense = Int8Linear(dense, kernels, gelu=True)
        module.intermediate_act_fn = torch.nn.Identity()
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Linear(child, kernels))
        elif _residual_norm(child):
            block: Any = child  # checked by _residual_norm: a Linear dense and a LayerNorm
            setattr(module, name, ResidualNorm(Int8Linear(block.dense, kernels),
                                               block.LayerNorm, kernels))
        else:
            _swap(child, kernels)
