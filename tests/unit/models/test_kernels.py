"""The embedder's native kernels against torch's int8 arithmetic, SDPA and layer norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ragtune.models import kernels


@pytest.fixture(scope="module")
def ops():  # type: ignore[no-untyped-def]
    """``torch.ops.ragtune``, built on first use (about 15 s on a fresh machine)."""
    loaded = kernels.native_kernels()
    if loaded is None:
        pytest.skip(f"native kernels not available here: {kernels.unavailable() or 'no build'}")
    return loaded


def test_the_kernels_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGTUNE_NATIVE_KERNELS", "0")
    assert kernels.native_kernels() is None
    assert kernels.unavailable() == "RAGTUNE_NATIVE_KERNELS is off"


def int8_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-row int8 activations times per-channel int8 weights, summed exactly (float64)."""
    ws = weight.abs().amax(1) / 127
    wq = torch.round(weight / ws[:, None]).clamp(-127, 127)
    xs = x.abs().amax(1) / 127
    xq = torch.round(x * (1 / xs)[:, None]).clamp(-127, 127)
    return (xq.double() @ wq.double().T) * xs[:, None].double() * ws.double() + bias.double()


@pytest.mark.parametrize(("m", "k", "n"), [(1, 384, 384), (7, 384, 1152), (100, 1536, 384),
                                           (13, 64, 70), (5, 4, 1)])
def test_int8_linear_scales_each_row_and_matches_the_integer_product(  # type: ignore[no-untyped-def]
        ops, m: int, k: int, n: int) -> None:
    if not ops.int8_vnni_supported():
        pytest.skip("this CPU has no AVX-512 VNNI")
    gen = torch.Generator().manual_seed(m * k + n)
    weight, bias = torch.randn(n, k, generator=gen), torch.randn(n, generator=gen)
    x = torch.randn(m, k, generator=gen) * torch.logspace(-2, 2, m)[:, None]  # rows of any size
    packed, scale, sums = ops.int8_pack(weight)
    y = ops.int8_linear(x, packed, scale, sums, bias)
    expected = int8_reference(x, weight, bias)
    scale_of = float(expected.abs().max())
    torch.testing.assert_close(y.double(), expected, rtol=1e-6, atol=1e-5 * scale_of)
    # close to fp32, each row at its own scale
    exact = x @ weight.T + bias
    rows = (y - exact).abs().amax(1) / (x @ weight.T).abs().amax(1).clamp_min(1e-30)
    assert float(rows.max()) < 0.05
    # a row's output does not depend on the other rows
    torch.testing.assert_close(ops.int8_linear(x[-1:], packed, scale, sums, bias), y[-1:])
    no_bias = ops.int8_linear(x.view(1, m, k), packed, scale, sums, None)
    assert no_bias.shape == (1, m, n)
    torch.testing.assert_close(no_bias[0] + bias, y, rtol=1e-5, atol=1e-4)
    # GELU (erf form) applied in the kernel: torch's gelu of the same output
    fused = ops.int8_linear(x, packed, scale, sums, bias, 1)
    torch.testing.assert_close(fused, F.gelu(y), rtol=1e-5, atol=1e-5 * max(1.0, scale_of))
    with pytest.raises(RuntimeError, match="activation must be 0"):
        ops.int8_linear(x, packed, scale, sums, bias, 2)


@pytest.mark.parametrize(("d", "heads"), [(32, 12), (64, 2), (128, 1)])
def test_encoder_attention_matches_sdpa_with_a_padding_mask(ops, d: int, heads: int) -> None:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(d)
    b, length = 4, 37
    lengths = torch.tensor([37, 20, 1, 16])
    q, k, v = (torch.randn(b, length, heads, d, generator=gen) * 2 for _ in range(3))
    for i, n in enumerate(lengths.tolist()):  # padded keys hold garbage that must not count
        k[i, n:], v[i, n:] = float("nan"), float("nan")
    got = ops.encoder_attention(q, k, v, lengths, d ** -0.5)
    keep = torch.arange(length)[None, :] < lengths[:, None]  # (b, keys)
    mask = keep[:, None, None, :]
    clean_k, clean_v = k.nan_to_num(0.0), v.nan_to_num(0.0)
    exact = F.scaled_dot_product_attention(
        q.transpose(1, 2).double(), clean_k.transpose(1, 2).double(),
        clean_v.transpose(1, 2).double(), attn_mask=mask).transpose(1, 2)
    fp32 = F.scaled_dot_product_attention(
        q.transpose(1, 2), clean_k.transpose(1, 2), clean_v.transpose(1, 2),
        attn_mask=mask).transpose(1, 2)
    assert got.shape == q.shape and not got.isnan().any()
    error = (got.double() - exact).abs().max()
    assert error <= 2 * (fp32.double() - exact).abs().max() + 1e-6 * exact.abs().max()
    if ops.bf16_dot_supported():  # bf16 inputs to both products: within bf16's rounding
        half = ops.encoder_attention(q, k, v, lengths, d ** -0.5, True)
        assert not half.isnan().any()
        relative = (half.double() - exact).norm() / exact.norm()
        assert 1e-5 < float(relative) < 0.01
    with pytest.raises(RuntimeError, match="head_dim must be 32, 64 or 128"):
        ops.encoder_attention(q[..., :16].contiguous(), k[..., :16].contiguous(),
                              v[..., :16].contiguous(), lengths, 0.25)


def tiny_bert():  # type: ignore[no-untyped-def]
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=64)
    return BertModel(config).eval()


def test_a_bert_runs_on_the_int8_kernel_with_its_gelu_inside(ops) -> None:  # type: ignore[no-untyped-def]
    from ragtune.models.int8_linear import Int8Linear, ResidualNorm, quantize_linear_layers

    if not ops.int8_vnni_supported():
        pytest.skip("this CPU has no AVX-512 VNNI")
    exact, model = tiny_bert(), tiny_bert()
    assert quantize_linear_layers(model) == "native"
    block = model.encoder.layer[0]
    assert isinstance(block.intermediate.dense, Int8Linear) and block.intermediate.dense.gelu
    assert isinstance(block.intermediate.intermediate_act_fn, torch.nn.Identity)
    assert isinstance(block.attention.self.query, Int8Linear)
    assert isinstance(block.output, ResidualNorm) and isinstance(block.output.dense, Int8Linear)
    assert isinstance(block.attention.output, ResidualNorm)
    ids = torch.randint(0, 100, (3, 20))
    with torch.no_grad():
        fast, slow = model(ids).last_hidden_state, exact(ids).last_hidden_state
    cosine = F.cosine_similarity(fast.flatten(1), slow.flatten(1))
    assert float(cosine.min()) > 0.99


def test_native_encoder_attention_gives_bert_the_outputs_of_sdpa_on_padded_texts(  # type: ignore[no-untyped-def]
        ops, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragtune.models import encoder_attention
    from ragtune.models.encoder_attention import use_native_attention

    found: list[torch.Tensor | None] = []  # the lengths each layer's kernel call got
    lengths = encoder_attention._lengths
    monkeypatch.setattr(encoder_attention, "_lengths",
                        lambda *args: found.append(lengths(*args)) or found[-1])
    exact, model = tiny_bert(), tiny_bert()
    assert use_native_attention(model)
    assert model.config._attn_implementation == "ragtune_encoder"
    ids = torch.randint(0, 100, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 12:], mask[2, 3:] = 0, 0
    with torch.no_grad():
        fast = model(ids, attention_mask=mask).last_hidden_state
        slow = exact(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-4)
    assert len(found) == 2 and all(f is not None and f.tolist() == [20, 12, 3] for f in found)


@pytest.mark.parametrize("n", [384, 64, 37])
def test_add_layer_norm_is_torchs_layer_norm_of_the_sum(ops, n: int) -> None:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(n)
    x, residual = torch.randn(3, 11, n, generator=gen) * 3, torch.randn(3, 11, n, generator=gen)
    weight, bias = torch.randn(n, generator=gen), torch.randn(n, generator=gen)
    got = ops.add_layer_norm(x, residual, weight, bias, 1e-12)
    expected = F.layer_norm(x + residual, (n,), weight, bias, 1e-12)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="one shape"):
        ops.add_layer_norm(x, residual[:, :3], weight, bias, 1e-12)
