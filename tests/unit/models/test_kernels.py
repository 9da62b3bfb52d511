"""The native q4 kernels against F.linear on the de-quantised matrix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ragtune.models import kernels
from ragtune.models.fast_decode import Decoder
from ragtune.models.projections import grid4

from .test_fast_decode import gguf_q4_1, llama, reference


@pytest.fixture(scope="module")
def ops():  # type: ignore[no-untyped-def]
    """``torch.ops.ragtune``, built on first use (about 15 s on a fresh machine)."""
    loaded = kernels.native_kernels()
    if loaded is None:
        pytest.skip(f"native kernels not available here: {kernels.unavailable() or 'no build'}")
    return loaded


@pytest.mark.parametrize(("n", "k"), [(1, 32), (7, 96), (96, 64), (331, 576), (64, 1536)])
def test_q4_linear_gives_fp32_products_of_the_dequantised_weights(ops, n: int, k: int) -> None:  # type: ignore[no-untyped-def]
    weight = gguf_q4_1(n, k, seed=n)
    grid = grid4(weight, exact=True)
    assert grid is not None
    rebuilt = ops.q4_dequantize(grid.codes, grid.scale, grid.low)
    assert torch.equal(rebuilt, weight)  # bit for bit, as GGUF de-quantises
    for m in (1, 2, 3, 4, 5, 8, 9, 17):
        x = torch.randn(m, k, dtype=torch.float64).float()
        got = ops.q4_linear(x, grid.codes, grid.scale, grid.low)
        exact = x.double() @ weight.double().T
        # fp32 sums in another order: within fp32 rounding of the sum of |products|
        bound = 4 * k * 2.0 ** -24 * (x.double().abs() @ weight.double().abs().T) + 1e-30
        assert got.shape == (m, n)
        assert bool(((got.double() - exact).abs() <= bound).all())
        assert (got - F.linear(x, weight)).abs().max() <= bound.max()


def test_q4_kernels_name_what_they_expect(ops) -> None:  # type: ignore[no-untyped-def]
    grid = grid4(gguf_q4_1(8, 64), exact=True)
    assert grid is not None
    with pytest.raises(RuntimeError, match="contiguous \\(m, k\\) float32"):
        ops.q4_linear(torch.randn(2, 32), grid.codes, grid.scale, grid.low)
    with pytest.raises(RuntimeError, match="uint8"):
        ops.q4_linear(torch.randn(2, 64), grid.codes.int(), grid.scale, grid.low)
    with pytest.raises(RuntimeError, match="\\(n, k/32\\) float32"):
        ops.q4_dequantize(grid.codes, grid.scale.double(), grid.low)


def q4_llama(seed: int = 0):  # type: ignore[no-untyped-def]
    """A tiny Llama whose projections are GGUF Q4_1 matrices, as in the bundled model."""
    model = llama(hidden=128, layers=2, vocab=96, seed=seed)  # head_dim 32
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            if p.dim() == 2 and "embed" not in name:
                p.copy_(gguf_q4_1(*p.shape, seed=seed * 100 + i, size=0.04))
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_mode_on_q4_weights_holds_4_bits_and_yields_the_tokens_of_transformers(
        ops, seed: int) -> None:  # type: ignore[no-untyped-def]
    model = q4_llama(seed)
    native, plain = Decoder(model, "exact"), Decoder(model, "exact", native=False)
    assert native.packed_share == 1.0 and plain.packed_share == 0.0
    assert native.nbytes < plain.nbytes
    for prompt in ([5], list(range(4, 60))):
        expected = reference(model, prompt, 40, min_new=40)
        assert list(native.tokens(prompt, 40, eos={3}, min_new_tokens=40)) == expected
        assert list(native.tokens(prompt, 40, eos={3}, min_new_tokens=40, lookup=6)) == expected


def test_the_kernels_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGTUNE_NATIVE_KERNELS", "0")
    assert kernels.native_kernels() is None
    assert kernels.unavailable() == "RAGTUNE_NATIVE_KERNELS is off"
    decoder = Decoder(q4_llama(), "exact")
    assert decoder.packed_share == 0.0  # fp32 matrices, multiplied with F.linear


def sdpa_reference(qkv: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                   start: int, heads: int, dtype: torch.dtype) -> torch.Tensor:
    """SDPA of the t rows of ``qkv`` over ``keys``/``values`` (kv, start + t, d), each row
    seeing positions up to its own, in ``dtype``."""
    t, _, d = qkv.shape
    kv = keys.shape[0]
    q = qkv[:, :heads].transpose(0, 1).to(dtype)  # (heads, t, d)
    k = keys.to(dtype).repeat_interleave(heads // kv, 0)
    v = values.to(dtype).repeat_interleave(heads // kv, 0)
    mask = torch.arange(start + t)[None, :] <= (start + torch.arange(t))[:, None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(0, 1).reshape(t, heads * d)


@pytest.mark.parametrize(("d", "heads", "kv"), [(64, 9, 3), (32, 4, 2), (128, 2, 1)])
@pytest.mark.parametrize(("start", "t"), [(1, 1), (15, 1), (16, 2), (300, 9), (1001, 4)])
def test_decode_attention_matches_sdpa_and_writes_the_new_keys_and_values(  # type: ignore[no-untyped-def]
        ops, d: int, heads: int, kv: int, start: int, t: int) -> None:
    capacity = -(-(start + t + 5) // 16) * 16
    gen = torch.Generator().manual_seed(start + t)
    cache = torch.full((2, kv, capacity, d), float("nan"))  # unwritten positions stay unread
    cache[:, :, :start] = torch.randn(2, kv, start, d, generator=gen) * 2
    keys_t = torch.full((kv, capacity // 16, d, 16), float("nan"))
    blocks = -(-start // 16)
    keys_t[:, :blocks] = cache[0, :, :blocks * 16].unflatten(1, (blocks, 16)).transpose(-1, -2)
    qkv = torch.randn(t, heads + 2 * kv, d, generator=gen) * 2
    got = ops.decode_attention(qkv, cache, keys_t, start, heads)
    new_keys = qkv[:, heads:heads + kv].transpose(0, 1)
    assert torch.equal(cache[0, :, start:start + t], new_keys)
    assert torch.equal(cache[1, :, start:start + t], qkv[:, heads + kv:].transpose(0, 1))
    written = keys_t.transpose(-1, -2).flatten(1, 2)[:, start:start + t]
    assert torch.equal(written, new_keys)
    keys, values = cache[0, :, :start + t], cache[1, :, :start + t]
    exact = sdpa_reference(qkv, keys, values, start, heads, torch.float64)
    fp32 = sdpa_reference(qkv, keys, values, start, heads, torch.float32)
    assert got.shape == (t, heads * d) and not got.isnan().any()
    # as close to float64 as torch's own fp32 SDPA, within a few fp32 roundings
    error = (got.double() - exact).abs().max()
    assert error <= 2 * (fp32.double() - exact).abs().max() + 1e-6 * exact.abs().max()


def test_decode_attention_names_what_it_expects(ops) -> None:  # type: ignore[no-untyped-def]
    cache, keys_t = torch.zeros(2, 1, 32, 64), torch.zeros(1, 2, 64, 16)
    with pytest.raises(RuntimeError, match="heads do not match"):
        ops.decode_attention(torch.zeros(1, 5, 64), cache, keys_t, 4, 2)
    with pytest.raises(RuntimeError, match="beyond the cache"):
        ops.decode_attention(torch.zeros(2, 4, 64), cache, keys_t, 31, 2)
    with pytest.raises(RuntimeError, match="head_dim must be 32, 64 or 128"):
        ops.decode_attention(torch.zeros(1, 4, 48), torch.zeros(2, 1, 32, 48),
                             torch.zeros(1, 2, 48, 16), 4, 2)


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
