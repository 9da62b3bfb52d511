"""A CPU decode loop for Llama-family models: fused projections, a KV cache sized per
request, and greedy picks checked in fp32.

``transformers.generate`` spends most of a token's time outside the matrix products that
define it (generic cache objects, logits processors, one small op per projection). This
loop:

- fuses q/k/v and gate/up into one product each and keeps the KV cache as one preallocated
  tensor, so a step is a handful of large ops per layer;
- in ``fast`` mode, repacks weight matrices that lie on GGUF's 4-bit grid into torch's
  int4 layout, whose kernel takes bf16 activations, so decode steps carry bf16 rounding;
  the prompt is prefilled in fp32 with the grid values rebuilt one matrix at a time, so
  the KV cache of the prompt and the first token are exact;
- picks greedy tokens from int8 logits, then re-scores candidates against the fp32 output
  embedding: in ``fast`` mode the best ``RERANK``, in ``exact`` mode every id that a
  bound on the int8 error leaves in reach of the best, so the pick is the fp32 one.

``exact`` mode multiplies fp32 matrices with ``F.linear`` and matches
``transformers.generate``. ``fp16`` mode keeps the projections' weights in fp16 (fbgemm's
fp16 products widen them to fp32 inside the kernel; activations and sums stay fp32): half
the bytes of fp32, a weight error of fp16's rounding (2**-11, against bf16's 2**-8), which
flips greedy picks only where the two best logits nearly tie.
Models it does not cover (other architectures, rope scaling) return ``None`` from
:func:`build_decoder`, and the caller keeps ``transformers.generate``. How each mode holds
and multiplies a weight matrix is in :mod:`ragtune.models.projections`.

The module is long because the decode loop is one recipe read top to bottom (prefill, the
abstention weighed, drafting, verification, bans); the pieces that stand alone (the
n-gram lookup, the abstention check, the projections) are small types beside it or in
their own modules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ragtune.models.controls import NoRepeat
from ragtune.models.projections import DecoderMode, Linear, bf16_supported, own_fp32

logger = logging.getLogger(__name__)

RERANK = 16  # greedy candidates re-scored in fp32 (fast mode)
SHORTLIST_MAX = 4096  # exact and fp16 modes: above this many candidates, score them all


Bans = list[list[int]]  # per row of states: the token ids it may not pick


def _ban(logits: torch.Tensor, bans: Bans) -> None:
    for row, ids in enumerate(bans):
        if ids:
            logits[row, ids] = float("-inf")


@dataclass
class Layer:
    input_norm: torch.Tensor
    qkv: Linear
    o: Linear
    post_norm: torch.Tensor
    gate_up: Linear
    down: Linear


def supported(config: Any) -> str | None:
    """Why this loop cannot run the model, or ``None`` when it can."""
    if getattr(config, "model_type", None) != "llama":
        return f"architecture {getattr(config, 'model_type', None)!r} (it covers llama)"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "projection biases"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r}"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        return f"rope scaling {rope.get('rope_type')!r}"
    return None


class Decoder:
    """Greedy or sampled decoding of one sequence at a time.

    Example::

        decoder = build_decoder(model, mode="fast")  # a transformers LlamaForCausalLM
        for token in decoder.tokens(prompt_ids, max_new_tokens=64, eos={2}):
            ...
    """

    def __init__(self, model: Any, mode: DecoderMode = "fast") -> None:
        cfg = model.config
        self.mode = mode
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.hidden = cfg.hidden_size
        self.eps = float(cfg.rms_norm_eps)
        rope = getattr(cfg, "rope_parameters", None) or {}
        theta = float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
        self.inv_freq = 1.0 / theta ** (
            torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim)
        # rotate_half(x) = roll(x, d/2) with its first half negated: the sign goes on sin
        self._sin_sign = torch.ones(self.head_dim)
        self._sin_sign[: self.head_dim // 2] = -1
        pack = mode == "fast"
        inner = model.model
        self.layers = []
        for block in inner.layers:
            a, mlp = block.self_attn, block.mlp
            qkv = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
            gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
            self.layers.append(Layer(
                own_fp32(block.input_layernorm.weight),
                Linear.from_weight(qkv, mode),
                Linear.from_weight(a.o_proj.weight, mode),
                own_fp32(block.post_attention_layernorm.weight),
                Linear.from_weight(gate_up, mode),
                Linear.from_weight(mlp.down_proj.weight, mode),
            ))
        self.embed = own_fp32(inner.embed_tokens.weight)
        self.norm = own_fp32(inner.norm.weight)
        tied = model.lm_head.weight.data_ptr() == inner.embed_tokens.weight.data_ptr()
        self.lm_head = self.embed if tied else own_fp32(model.lm_head.weight)
        self.vocab = self.lm_head.shape[0]
        # int8 logits only choose candidates, re-scored in fp32 (see _greedy); without bf16
        # kernels the int8 product would be emulated, and exact mode scores in fp32 alone
        self._lm_int8: tuple[torch.Tensor, torch.Tensor] | None = None
        if pack or bf16_supported():
            scales = (self.lm_head.abs().amax(1).clamp_min(1e-12) / 127).to(torch.bfloat16)
            codes = torch.round(self.lm_head / scales.float()[:, None]).clamp_(-127, 127)
            rebuilt = codes * scales.float()[:, None]
            self._lm_int8 = (codes.to(torch.int8), scales)
            # per vocabulary row: |int8 logit - fp32 logit| <= |state|_1 * slack + |logit|/128
            # (the weights' rounding, the states' and the output's rounding to bf16)
            self._slack = ((self.lm_head - rebuilt).abs().amax(1)
                           + 2.0 ** -8 * rebuilt.abs().amax(1))
        linears = [lin for layer in self.layers
                   for lin in (layer.qkv, layer.o, layer.gate_up, layer.down)]
        self.packed_share = sum(lin.grid is not None for lin in linears) / len(linears)

    @property
    def nbytes(self) -> int:
        """Bytes of weights held (the embedding is shared with the output layer when tied)."""
        total = sum(lin.nbytes for layer in self.layers
                    for lin in (layer.qkv, layer.o, layer.gate_up, layer.down))
        total += self.embed.numel() * 4
        if self.lm_head.data_ptr() != self.embed.data_ptr():
            total += self.lm_head.numel() * 4
        if self._lm_int8 is not None:
            total += self._lm_int8[0].numel() + self._lm_int8[1].numel() * 2
            total += self._slack.numel() * 4
        return total

    def _rope(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and signed ``sin`` ``(end - start, heads + 2 * kv_heads, head_dim)`` for
        the fused q/k/v heads: the values' heads get 1 and 0, so they pass through."""
        freqs = torch.outer(torch.arange(start, end, dtype=torch.float32), self.inv_freq)
        angles = torch.cat([freqs, freqs], -1)
        t, rotated, d = end - start, self.heads + self.kv_heads, self.head_dim
        cos = torch.ones(t, rotated + self.kv_heads, d)
        sin = torch.zeros(t, rotated + self.kv_heads, d)
        cos[:, :rotated] = angles.cos()[:, None]
        sin[:, :rotated] = (angles.sin() * self._sin_sign)[:, None]
        return cos, sin

    def cache(self, positions: int) -> torch.Tensor:
        """An empty KV cache for ``positions`` tokens: ``(layers, 2, kv_heads, positions,
        head_dim)``."""
        return torch.empty(len(self.layers), 2, self.kv_heads, positions, self.head_dim)

    def forward(self, tokens: torch.Tensor, start: int, cache: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(t, hidden)`` after the final norm for ``tokens`` ``(t,)`` at
        positions ``start..start+t``, writing their keys and values into ``cache``."""
        t = tokens.shape[0]
        end = start + t
        h, kv, d = self.heads, self.kv_heads, self.head_dim
        group = h // kv
        # decode steps (one token or a drafted run being verified): fast mode's int4; the
        # prompt (from position 0), fp32 matrices
        project = Linear.step if start > 0 else Linear.full
        cos, sin = self._rope(start, end)
        mask = None
        if t > 1 and start > 0:  # drafts see the cache and the drafts before
            mask = torch.arange(end)[None, :] <= (start + torch.arange(t))[:, None]
            mask = mask.repeat(group, 1)  # rows as the queries are grouped in _attend
        x = self.embed[tokens]
        for i, layer in enumerate(self.layers):
            y = F.rms_norm(x, (self.hidden,), layer.input_norm, self.eps)
            qkv = project(layer.qkv, y).view(t, h + 2 * kv, d)
            # rotary embedding of queries and keys, values passed through: x*cos +
            # rotate_half(x)*sin, with rotate_half(x) = roll(x, d/2) with its first half negated
            qkv = qkv * cos + qkv.roll(d // 2, -1) * sin
            x = x + project(layer.o, self._attend(qkv, cache[i], start, mask))
            y = F.rms_norm(x, (self.hidden,), layer.post_norm, self.eps)
            gate, up = project(layer.gate_up, y).chunk(2, -1)
            y = F.silu(gate) * up
            x = x + project(layer.down, y)
        return F.rms_norm(x, (self.hidden,), self.norm, self.eps)

    def _attend(self, qkv: torch.Tensor, cache: torch.Tensor, start: int,
                mask: torch.Tensor | None) -> torch.Tensor:
        """Attention ``(t, heads * head_dim)`` of ``qkv`` ``(t, heads + 2 kv_heads,
        head_dim)`` over one layer's ``cache`` ``(2, kv_heads, capacity, head_dim)``, with
        SDPA, after writing the new keys and values into it."""
        t = qkv.shape[0]
        end = start + t
        h, kv, d = self.heads, self.kv_heads, self.head_dim
        group = h // kv
        cache[:, :, start:end] = qkv[:, h:].view(t, 2, kv, d).permute(1, 2, 0, 3)
        keys, values = cache[0, :, :end], cache[1, :, :end]
        if start == 0 and t > 1:
            att = F.scaled_dot_product_attention(
                qkv[:, :h].transpose(0, 1).unsqueeze(0), keys.unsqueeze(0),
                values.unsqueeze(0), is_causal=True, enable_gqa=True)[0]
        else:  # the queries sharing a key head as one block: each key is read once
            q = qkv[:, :h].transpose(0, 1).reshape(kv, group * t, d)
            att = F.scaled_dot_product_attention(
                q.unsqueeze(0), keys.unsqueeze(0), values.unsqueeze(0), attn_mask=mask)
        return att.view(h, t, d).transpose(0, 1).reshape(t, h * d)

    def _greedy(self, states: torch.Tensor, bans: Bans) -> list[int]:
        """The argmax of the logits of each row of ``states`` ``(m, hidden)``, with the ids
        ``bans[i]`` excluded in row ``i``.

        int8 logits (a quarter of the fp32 output layer's bytes) choose candidates that are
        re-scored in fp32. In exact and fp16 modes the candidates are every id whose int8
        logit, widened by a bound on its error, can reach the best id's lower bound, so the
        fp32 argmax is always among them and the pick is that of fp32 logits over the whole
        vocabulary; when the rows' bounds admit more than ``SHORTLIST_MAX`` ids in all,
        the rows are scored in full. In fast mode the best ``RERANK`` int8 candidates are
        re-scored (the int8 error is far below the gap between the 1st and 16th logits)."""
        if self._lm_int8 is None:
            return self._full_argmax(states, bans)
        codes, scales = self._lm_int8
        rough = torch.ops.aten._weight_int8pack_mm(states.to(torch.bfloat16), codes, scales)
        rough = rough.float()
        if self.mode != "fast":
            margin = (states.abs().sum(-1, keepdim=True) * self._slack
                      + rough.abs() * 2.0 ** -7 + 1e-4)
        _ban(rough, bans)
        if self.mode == "fast":
            candidates = rough.topk(RERANK, dim=-1).indices  # (m, RERANK)
            exact = (self.lm_head[candidates] @ states[:, :, None])[..., 0]
            return candidates.gather(1, exact.argmax(-1, keepdim=True))[:, 0].tolist()
        possible = rough + margin >= (rough - margin).amax(-1, keepdim=True)
        ids = possible.any(0).nonzero()[:, 0]  # every row's candidates, scored together
        if len(ids) > SHORTLIST_MAX:
            return self._full_argmax(states, bans)
        exact = states @ self.lm_head[ids].T
        exact[~possible[:, ids]] = float("-inf")
        return ids[exact.argmax(-1)].tolist()  # type: ignore[no-any-return]

    def _full_argmax(self, states: torch.Tensor, bans: Bans) -> list[int]:
        """:meth:`_greedy` with fp32 logits over the whole vocabulary."""
        logits = states @ self.lm_head.T
        _ban(logits, bans)
        return logits.argmax(-1).tolist()  # type: ignore[no-any-return]

    def _probability(self, state: torch.Tensor, check: AbstainCheck, position: int,
                     cache: torch.Tensor) -> float:
        """p(``check.ids[0]`` then one of ``check.starts`` | the text so far), from the last
        ``state`` ``(hidden,)`` and one step for ``ids[0]`` written at ``position``
        (overwritten by the tokens decoded after), in fp32 logits."""
        first = float((self.lm_head @ state).softmax(-1)[check.ids[0]])
        starts = check.starts
        if not starts:
            return first
        after = self.forward(torch.tensor(check.ids[:1]), position, cache)[-1]
        return first * float((self.lm_head @ after).softmax(-1)[starts].sum())

    def _sample(self, state: torch.Tensor, temperature: float, top_p: float,
                banned: list[int], generator: torch.Generator | None) -> int:
        logits = (self.lm_head @ state) / temperature
        if banned:
            logits[banned] = float("-inf")
        probs, order = logits.softmax(-1).sort(descending=True)
        keep = probs.cumsum(-1) - probs < top_p  # nucleus: smallest set reaching top_p
        probs = probs * keep
        pick = torch.multinomial(probs / probs.sum(), 1, generator=generator)
        return int(order[pick])

    def tokens(self, prompt: list[int], max_new_tokens: int, *, eos: set[int],
               temperature: float = 0.0, top_p: float = 0.95, min_new_tokens: int = 0,
               generator: torch.Generator | None = None, lookup: int = 0,
               no_repeat: int = 0, abstain: AbstainCheck | None = None,
               ban_first: Sequence[int] = ()) -> Iterator[int]:
        """Yield up to ``max_new_tokens`` new token ids after ``prompt``, ending after an
        ``eos`` id; ``min_new_tokens`` bans ``eos`` until then (as transformers does).
        ``no_repeat`` > 0 bans any token that would repeat an n-gram of that length of the
        answer (:mod:`ragtune.models.controls`; the prompt's n-grams stay allowed).

        ``lookup`` > 0 turns on prompt-lookup drafting for greedy decoding: where the last
        few tokens occurred earlier in the prompt or the answer, the tokens that followed
        them there are checked in one forward pass together with the next token, and every
        one that greedy decoding would have produced is kept. The output is that of greedy
        decoding without drafts (a product over several rows may round differently in the
        last bit, which changed no measured answer); a pass that checks a few tokens costs
        little more than one, so answers that quote their sources come out faster. The
        draft starts at one token, doubles (up to ``lookup``) while drafts are kept whole,
        and drops to one more than the tokens kept when one is not, so that text that does
        not repeat pays little.

        ``abstain`` (greedy decoding only) weighs an abstention before the answer: its
        probability is measured in one step and recorded in it; at its ``threshold`` or
        above the abstention's tokens are the output, below it the answer may not begin
        with the abstention's first token. ``ban_first`` are ids the answer may not begin
        with.
        """
        if not prompt or max_new_tokens <= 0:
            return
        check = abstain if abstain is not None and abstain.ids and temperature <= 0 else None
        cache = self.cache(len(prompt) + max(max_new_tokens, 1))
        eos_ids = sorted(eos)
        guard = NoRepeat(no_repeat)
        lookups = NgramLookup(prompt) if lookup > 0 and temperature <= 0 else None
        limit = 1  # draft length: doubles while drafts are kept, shrinks to what was kept
        produced = 0
        with torch.inference_mode():
            # rows of ``states``: row 0 follows the text so far, row i follows draft[i - 1]
            states = self.forward(torch.tensor(prompt), 0, cache)[-1:]
            position = len(prompt) - 1  # of the last token that went through the model
            first_bans = list(ban_first)
            if check is not None:
                check.probability = self._probability(states[0], check, len(prompt), cache)
                if check.threshold is not None:
                    if check.probability >= check.threshold:
                        yield from check.ids[:max_new_tokens]
                        return
                    # refused: the answer does not begin as the abstention does (after
                    # its first word alone the model has nothing left to say)
                    first_bans.append(check.ids[0])
            draft: list[int] = []
            while True:
                # row i follows draft[:i]: eos is banned while the answer is too short,
                # and so is whatever would repeat one of its n-grams
                bans = [(eos_ids if produced + i < min_new_tokens else [])
                        + guard.banned(draft[:i])
                        + (first_bans if produced + i == 0 else [])
                        for i in range(len(draft) + 1)]
                if temperature > 0:
                    picked = [self._sample(states[0], temperature, top_p, bans[0], generator)]
                else:
                    picked = self._greedy(states, bans)
                accepted = picked[:1]
                for i, drafted in enumerate(draft):
                    if drafted != picked[i]:  # the model would not have produced it
                        break
                    accepted.append(picked[i + 1])
                if draft:
                    kept = len(accepted) - 1
                    limit = min(lookup, 2 * limit) if kept == len(draft) else kept + 1
                for token in accepted:
                    yield token
                    produced += 1
                    guard.append(token)
                    if token in eos or produced == max_new_tokens:
                        return
                    if lookups is not None:
                        lookups.append(token)
                position += len(accepted)
                draft = (lookups.draft(min(limit, max_new_tokens - produced - 1))
                         if lookups is not None else [])
                # keys and values after the accepted ones are overwritten before being read
                states = self.forward(torch.tensor([accepted[-1], *draft]), position, cache)


@dataclass
class AbstainCheck:
    """An abstention weighed before decoding (:meth:`Decoder.tokens`): ``ids`` are its
    tokens, and ``seconds`` the ids that begin it as well as ``ids[1]`` does after
    ``ids[0]`` (``The source``, ``The Sources``: the same refusal). Its probability is
    that of ``ids[0]`` followed by any of them; at ``threshold`` or more ``ids`` are the
    output (with ``threshold`` ``None`` it is only measured, and greedy decoding decides as
    it would). ``probability`` is set to what the model gave it.

    Example:
        >>> check = AbstainCheck([504, 2785, 536], 0.5, seconds=[2785, 3995])
        >>> check.probability is None
        True
    """

    ids: list[int]
    threshold: float | None = None
    seconds: Sequence[int] = ()
    probability: float | None = None

    @property
    def starts(self) -> list[int]:
        """The ids after ``ids[0]`` that make it the abstention."""
        return sorted({*self.seconds, *self.ids[1:2]})


class NgramLookup:
    """Draft tokens by prompt lookup (Saxena 2023; transformers' ``prompt_lookup_num_tokens``,
    vLLM's n-gram speculation): the tokens that followed the latest earlier occurrence of
    the text's last ``n`` tokens, trying ``n = NGRAM`` down to 2.

    Example:
        >>> lookup = NgramLookup([5, 6, 7, 8, 9])
        >>> for token in (1, 5, 6):
        ...     lookup.append(token)
        >>> lookup.draft(3)
        [7, 8, 9]
    """

    NGRAM = 3

    def __init__(self, tokens: list[int]) -> None:
        self.tokens: list[int] = []
        self._next: dict[tuple[int, ...], int] = {}  # n-gram -> where its successor is
        for token in tokens:
            self.append(token)

    def append(self, token: int) -> None:
        tokens = self.tokens
        tokens.append(token)
        end = len(tokens) - 1  # the n-grams ending just before ``token`` point at it
        for n in range(2, self.NGRAM + 1):
            if end >= n:
                self._next[tuple(tokens[end - n:end])] = end

    def draft(self, k: int) -> list[int]:
        if k <= 0:
            return []
        for n in range(self.NGRAM, 1, -1):
            at = self._next.get(tuple(self.tokens[-n:]))
            if at is not None:
                return self.tokens[at:at + k]
        return []


def build_decoder(model: Any, mode: DecoderMode = "fast") -> Decoder | None:
    """A :class:`Decoder` for a transformers causal LM, or ``None`` (with the reason
    logged) when the model is not one it covers."""
    reason = supported(model.config)
    if reason is not None:
        logger.info("fast decoding does not cover %s; using transformers.generate", reason)
        return None
    decoder = Decoder(model, mode)
    logger.info("%s decoding: %.0f%% of projections in 4 bits, %.0f MB of weights", mode,
                100 * decoder.packed_share, decoder.nbytes / 2**20)
    return decoder
