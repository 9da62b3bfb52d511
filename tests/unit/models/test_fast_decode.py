"""The fast decode loop against transformers.generate on tiny random Llama models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ragtune.models.controls import NoRepeat
from ragtune.models.fast_decode import AbstainCheck, Decoder, NgramLookup, build_decoder
from ragtune.models.projections import Linear, bf16_supported, fp16_supported, grid4


def llama(hidden: int = 64, layers: int = 2, vocab: int = 96, seed: int = 0):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, eos_token_id=3, pad_token_id=0,
                         bos_token_id=None, tie_word_embeddings=True, initializer_range=0.3)
    return LlamaForCausalLM(config).eval()


def on_q4_grid(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` rounded the way GGUF Q4_1 stores it: 16 levels per block of 32."""
    n, k = weight.shape
    g = weight.reshape(n, k // 32, 32)
    low, high = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    scale = (high - low) / 15
    return (torch.round((g - low) / scale) * scale + low).reshape(n, k)


def gguf_q4_1(n: int, k: int, offset: bool = True, seed: int = 0,
              size: float = 0.02) -> torch.Tensor:
    """A matrix as GGUF de-quantises Q4_1 blocks: fp16 ``d`` and ``m`` per 32 values,
    ``d * q + m`` in fp32 (Q4_0 without the offset: ``d * (q - 8)``)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (n, k // 32, 32), generator=gen).float()
    q[..., 0], q[..., 1] = 0, 15  # ggml puts each block's minimum at 0 and maximum at 15
    d = (torch.rand(n, k // 32, 1, generator=gen) * size + size / 20).half().float()
    m = (torch.randn(n, k // 32, 1, generator=gen) * 8 * size).half().float()
    return (q * d + m).reshape(n, k) if offset else (d * (q - 8)).reshape(n, k)


def reference(model, prompt: list[int], n: int, min_new: int = 0) -> list[int]:  # type: ignore[no-untyped-def]
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                             min_new_tokens=min_new, do_sample=False, eos_token_id=3,
                             pad_token_id=0)
    return out[0, len(prompt):].tolist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("prompt", [[5], [7, 8, 9, 10, 11, 12], list(range(4, 60))])
def test_exact_mode_yields_the_tokens_transformers_generates(prompt: list[int]) -> None:
    model = llama()
    decoder = Decoder(model, "exact")
    expected = reference(model, prompt, 40, min_new=40)
    assert list(decoder.tokens(prompt, 40, eos={3}, min_new_tokens=40)) == expected


def test_exact_mode_stops_after_end_of_sequence_like_transformers() -> None:
    model = llama(seed=3)
    decoder = Decoder(model, "exact")
    for start in range(4, 40):  # some of these prompts end early
        expected = reference(model, [start, start + 1], 30)
        got = list(decoder.tokens([start, start + 1], 30, eos={3}))
        assert got == expected
        assert len(got) == 30 or got[-1] == 3


@pytest.mark.parametrize("wrong_every", [0, 3])
def test_drafted_tokens_are_verified_in_shared_passes_and_keep_the_greedy_tokens(
        monkeypatch: pytest.MonkeyPatch, wrong_every: int) -> None:
    model = llama()
    decoder = Decoder(model, "exact")
    prompt = [5, 6, 7, 8] * 6
    expected = reference(model, prompt, 40, min_new=40)

    def oracle(lookup: NgramLookup, k: int) -> list[int]:
        """The true continuation, with every ``wrong_every``-th token replaced."""
        done = len(lookup.tokens) - len(prompt)
        draft = expected[done:done + k]
        if wrong_every:
            draft = [t if (done + i) % wrong_every else (t + 1) % 96
                     for i, t in enumerate(draft)]
        return draft

    monkeypatch.setattr(NgramLookup, "draft", oracle)
    passes = []
    forward = decoder.forward
    monkeypatch.setattr(decoder, "forward", lambda tokens, start, cache: (
        passes.append(len(tokens)) or forward(tokens, start, cache)))
    got = list(decoder.tokens(prompt, 40, eos={3}, min_new_tokens=40, lookup=6))
    assert got == expected
    # the prompt, then passes of up to 7 tokens, the draft growing while it is right: fewer
    # passes than the 41 of one token at a time
    assert max(passes[1:]) == 7 if not wrong_every else max(passes[1:]) <= 3
    assert len(passes) < (30 if wrong_every else 10)


def test_prompt_lookup_keeps_the_greedy_tokens_when_drafts_fail() -> None:
    model = llama(seed=3)
    decoder = Decoder(model, "exact")
    for prompt in ([5, 6, 7, 8] * 6, list(range(4, 30)) * 2, [9, 10]):
        for n, min_new in ((40, 40), (25, 0), (1, 0)):
            got = list(decoder.tokens(prompt, n, eos={3}, min_new_tokens=min_new, lookup=6))
            assert got == reference(model, prompt, n, min_new=min_new)


def _first_repeat(tokens: list[int], n: int) -> int:
    """Index of the first token that completes an n-gram seen before (len if none)."""
    seen = set()
    for i in range(n - 1, len(tokens)):
        gram = tuple(tokens[i - n + 1:i + 1])
        if gram in seen:
            return i
        seen.add(gram)
    return len(tokens)


@pytest.mark.parametrize("lookup", [0, 6])
def test_no_repeat_keeps_the_greedy_tokens_until_a_loop_and_never_repeats(lookup: int) -> None:
    model = llama(seed=3)
    decoder = Decoder(model, "exact")
    looped = 0
    for prompt in ([5, 6, 7, 8] * 6, [9, 10], list(range(4, 30))):
        plain = reference(model, prompt, 40, min_new=40)
        got = list(decoder.tokens(prompt, 40, eos={3}, min_new_tokens=40, lookup=lookup,
                                  no_repeat=2))
        first = _first_repeat(plain, 2)
        looped += first < len(plain)
        assert got[:first] == plain[:first]  # the same answer up to the first repeat
        assert got[first] != plain[first] if first < len(plain) else got == plain
        assert _first_repeat(got, 2) == len(got)  # and then no bigram twice
        # the prompt's own n-grams stay allowed: answers may quote their sources
    assert looped >= 2  # greedy decoding of this model repeats itself on these prompts


def test_no_repeat_bans_what_followed_the_same_tokens_also_inside_a_draft() -> None:
    guard = NoRepeat(3)
    for token in (1, 2, 3, 4):
        guard.append(token)
    assert guard.banned() == []
    assert guard.banned([1, 2]) == [3]  # 1, 2 was followed by 3
    assert guard.banned([9, 9]) == []
    assert guard.banned([9, 9, 5, 9, 9]) == [5]  # 9, 9, 5 is inside the draft
    assert NoRepeat(0).banned() == []


def test_ngram_lookup_proposes_what_followed_the_latest_earlier_match() -> None:
    lookup = NgramLookup([1, 2, 3, 4, 1, 2, 5, 6])
    assert lookup.draft(4) == []  # (5, 6) and (2, 5, 6) never occurred before
    lookup.append(1)
    lookup.append(2)
    assert lookup.draft(3) == [5, 6, 1]  # the latest earlier (1, 2) was followed by 5
    lookup.append(3)
    assert lookup.draft(2) == [4, 1]  # (1, 2, 3) beats (2, 3)
    assert lookup.draft(0) == []


def test_the_grid_of_q4_weights_is_recovered_exactly_and_nothing_else_is_packed() -> None:
    weight = on_q4_grid(torch.randn(48, 96))
    grid = grid4(weight)
    assert grid is not None
    assert grid.codes.dtype == torch.uint8 and grid.codes.shape == (48, 48)
    assert int(grid.q.max()) <= 15 and grid.q.shape == (48, 3, 32)
    torch.testing.assert_close(grid.dequantize(), weight, rtol=0, atol=1e-6)
    assert grid4(torch.randn(48, 96)) is None  # full precision: kept as it is
    assert grid4(torch.randn(48, 40)) is None  # not a whole number of groups
    assert Linear.from_weight(torch.randn(48, 96), "fast").weight is not None


def test_gguf_q4_weights_are_recovered_bit_for_bit() -> None:
    weight = gguf_q4_1(64, 128)
    grid = grid4(weight)
    assert grid is not None and torch.equal(grid.dequantize(), weight)
    q4_0 = gguf_q4_1(16, 64, offset=False)  # Q4_0: d * (q - 8)
    grid = grid4(q4_0)
    assert grid is not None and torch.equal(grid.dequantize(), q4_0)


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no bf16 kernels")
def test_fast_mode_packs_grid_weights_prefills_exactly_and_steps_close() -> None:
    model = llama(hidden=64)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.copy_(on_q4_grid(p))
    fast, exact = Decoder(model, "fast"), Decoder(model, "exact")
    assert fast.packed_share == 1.0 and fast.nbytes < exact.nbytes
    x = torch.randn(5, 64)
    packed = fast.layers[0].qkv
    weight = exact.layers[0].qkv.weight
    torch.testing.assert_close(packed.full(x), F.linear(x, weight), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed.step(x), F.linear(x, weight), rtol=0.05, atol=0.05)
    prompt = list(range(4, 40))
    # the prompt is prefilled in fp32 with the exact grid values: same first token
    assert next(fast.tokens(prompt, 5, eos=set())) == reference(model, prompt, 1)[0]
    assert len(list(fast.tokens(prompt, 12, eos=set()))) == 12
    drafted = list(fast.tokens(prompt * 2, 12, eos=set(), lookup=4))
    assert len(drafted) == 12 and drafted[0] == reference(model, prompt * 2, 1)[0]


@pytest.mark.skipif(not fp16_supported(), reason="torch has no fp16-weight kernels here")
def test_fp16_mode_multiplies_fp16_weights_in_fp32_and_follows_transformers() -> None:
    model = llama(hidden=128, layers=3, vocab=512, seed=5)
    half, exact = Decoder(model, "fp16"), Decoder(model, "exact")
    assert half.nbytes < exact.nbytes
    x = torch.randn(7, 128)
    weight = exact.layers[1].gate_up.weight
    assert weight is not None and half.layers[1].gate_up.weight is None
    # fp32 activations and sums over weights rounded to fp16: errors of fp16's rounding,
    # far below bf16's (2**-8)
    expected = x @ weight.half().float().T
    torch.testing.assert_close(half.layers[1].gate_up.full(x), expected, rtol=1e-5, atol=1e-5)
    assert (half.layers[1].gate_up.full(x) - x @ weight.T).abs().max() > 0
    huge = torch.randn(8, 32)
    huge[0, 0] = 1e5  # beyond fp16's range: kept in fp32 rather than turned into inf
    assert Linear.from_weight(huge, "fp16").weight is not None
    for prompt in ([5], list(range(4, 60))):
        expected_tokens = reference(model, prompt, 40, min_new=40)
        assert list(half.tokens(prompt, 40, eos={3}, min_new_tokens=40)) == expected_tokens
        assert list(half.tokens(prompt, 40, eos={3}, min_new_tokens=40, lookup=6)) == \
            expected_tokens


def test_sampling_is_reproducible_with_a_seed_and_differs_from_greedy() -> None:
    decoder = Decoder(llama(), "exact")
    runs = [list(decoder.tokens([5, 6], 30, eos=set(), temperature=1.5,
                                generator=torch.Generator().manual_seed(7))) for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 30
    assert runs[0] != list(decoder.tokens([5, 6], 30, eos=set()))


def test_other_architectures_keep_transformers_generate() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    assert build_decoder(model) is None


def test_the_generator_streams_the_text_it_generates(tiny_model) -> None:  # type: ignore[no-untyped-def]
    from ragtune.errors import ConfigError
    from ragtune.models.local_generator import LocalGenerator

    generator = LocalGenerator(str(tiny_model))
    assert generator.decoder is not None and generator.decoder.mode == "exact"
    baseline = LocalGenerator(str(tiny_model), decoder="transformers")
    assert baseline.decoder is None
    question = [{"role": "user", "content": "what is the cat ?"}]
    answer = generator.generate(question, max_tokens=12)  # type: ignore[list-item]
    assert answer.text == baseline.generate(question, max_tokens=12).text  # type: ignore[list-item]
    streamed = "".join(generator.stream(question, max_tokens=12))  # type: ignore[list-item]
    assert streamed.strip() == answer.text
    if fp16_supported():
        half = LocalGenerator(str(tiny_model), decoder="fp16")
        assert half.decoder is not None and half.decoder.mode == "fp16"
    with pytest.raises(ConfigError, match="choose one of auto, exact, fp16, fast, transformers"):
        LocalGenerator(str(tiny_model), decoder="turbo")


@pytest.mark.skipif(not bf16_supported(), reason="exact mode scores every id without bf16")
def test_exact_mode_picks_the_fp32_argmax_from_its_int8_shortlist(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ragtune.models import fast_decode

    decoder = Decoder(llama(hidden=128, vocab=4096, seed=3), mode="exact")
    torch.manual_seed(0)
    states = torch.randn(64, 128) * torch.rand(64, 1) * 4  # spread and near-flat rows
    states[0] = decoder.lm_head[7] + decoder.lm_head[9]  # a near tie between two ids
    banned = [3, int((states[1] @ decoder.lm_head.T).argmax())]
    logits = states @ decoder.lm_head.T
    logits[:2, banned] = float("-inf")
    logits[5, 7] = float("-inf")
    expected = logits.argmax(-1).tolist()
    bans = [banned, banned, [], [], [], [7]]  # per row; rows after these ban nothing
    assert decoder._greedy(states, bans) == expected
    monkeypatch.setattr(fast_decode, "SHORTLIST_MAX", 0)  # every row scored in full
    assert decoder._greedy(states, bans) == expected
    # the bound is a bound: int8 logits never stray further than it from fp32
    codes, scales = decoder._lm_int8
    rough = torch.ops.aten._weight_int8pack_mm(states.to(torch.bfloat16), codes, scales).float()
    margin = states.abs().sum(-1, keepdim=True) * decoder._slack + rough.abs() / 128
    assert bool(((rough - states @ decoder.lm_head.T).abs() <= margin).all())


def _start_probability(model, prompt: list[int], first: int, seconds: list[int]) -> float:  # type: ignore[no-untyped-def]
    """p(first, then any of seconds | prompt) from transformers' own forward pass."""
    with torch.no_grad():
        probs = model(torch.tensor([prompt + [first]])).logits[0].float().softmax(-1)
    return float(probs[len(prompt) - 1, first] * probs[len(prompt), seconds].sum())


def test_an_abstention_is_weighed_with_its_probability_and_chosen_at_its_threshold() -> None:
    model = llama(seed=5)
    decoder = Decoder(model, "exact")
    prompt = list(range(4, 30))
    abstention = [11, 12, 13]
    p = _start_probability(model, prompt, 11, [12, 40])  # 40: a variant of its second word
    greedy = list(decoder.tokens(prompt, 12, eos={3}))
    measured = AbstainCheck(abstention, seconds=[40])  # no threshold: measured only
    assert list(decoder.tokens(prompt, 12, eos={3}, abstain=measured)) == greedy
    assert measured.probability == pytest.approx(p, rel=1e-4)
    chosen = AbstainCheck(abstention, threshold=p * 0.9, seconds=[40])
    assert list(decoder.tokens(prompt, 12, eos={3}, abstain=chosen)) == abstention
    not_chosen = AbstainCheck(abstention, threshold=min(1.0, p * 1.1), seconds=[40])
    assert list(decoder.tokens(prompt, 12, eos={3}, abstain=not_chosen)) == greedy


def test_an_abstention_weighed_and_refused_is_not_begun() -> None:
    model = llama(seed=5)
    decoder = Decoder(model, "exact")
    prompt = list(range(4, 30))
    greedy = list(decoder.tokens(prompt, 12, eos={3}))
    # the abstention greedy decoding would write itself: weighed and refused, it is not
    check = AbstainCheck(greedy[:2], threshold=1.0, seconds=[50])
    got = list(decoder.tokens(prompt, 12, eos={3}, abstain=check))
    assert check.probability is not None and 0 < check.probability < 1
    assert got[0] != greedy[0]
    assert got == list(decoder.tokens(prompt, 12, eos={3}, ban_first=[greedy[0]]))


def test_an_answer_does_not_begin_with_a_banned_id_and_takes_the_next_best() -> None:
    model = llama(seed=2)
    decoder = Decoder(model, "exact")
    prompt = [9, 10, 11]
    greedy = list(decoder.tokens(prompt, 8, eos={3}))
    with torch.no_grad():
        first = model(torch.tensor([prompt])).logits[0, -1].float()
    runner_up = int(first.topk(2).indices[1])
    got = list(decoder.tokens(prompt, 8, eos={3}, ban_first=[greedy[0]]))
    assert got[0] == runner_up
