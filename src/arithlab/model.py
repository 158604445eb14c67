"""GPT: the GPT-2 architecture as in nanoGPT, with a KV cache for decoding.

Pre-LayerNorm blocks, GELU MLPs, input and output embeddings tied, optional biases,
dropout. Attention goes through scaled_dot_product_attention, which picks flash or
memory-efficient kernels where the device has them.

Positions (`positions`):
- `learned`: GPT-2's learned absolute positions (the study's);
- `none`: no position embedding (NoPE): the causal mask alone tells order;
- `abacus`: every digit gets a learned embedding of its place in its own number, 1 for the
  first digit written, 2 for the next...; other characters get none (McLeish et al. 2024).
  With numbers written least significant digit first (format `reverse_all`) digits of
  equal significance share an embedding, whatever the numbers' lengths;
- `coupled`: abacus places, with everything from `=` on shifted by one place, so that the
  character from which the model writes the answer's i-th digit carries place i, the same
  as the operands' i-th digits it needs (position coupling, Cho et al. 2024).

Places are embedded by a learned table, or (`place_table: sinusoidal`) by fixed sinusoids
of the place, in which the code of place p - 1 is the same rotation of the code of p for
every p: attention that learns "the digit one place below" then works at places and
distances that never occurred together in training. Or (`place_table: relative`) they are
not embedded at all: every attention head adds a learned bias for the difference of the
query's and the key's places, one bias for each difference up to PLACE_DISTANCE and one
for all larger ones below, one for all above (as T5 buckets distances). A model trained
on 10-digit numbers then meets no place difference at 20 digits that it has not trained:
an embedded place table relates places 1 and 15 however it happens to, this bias as "far
apart". `place_table: local` is the same with digits farther apart than PLACE_DISTANCE
not attending to each other at all: a longer number then also brings no more keys to
spread attention over, so each place is computed exactly as at the trained lengths (for
tasks whose digits depend on nearby places only, as addition's do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 96
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    positions: str = "learned"  # learned | none | abacus | coupled
    place_table: str = "learned"  # abacus / coupled places: learned | sinusoidal | relative | local
    # Token ids of the characters 0-9, `=` and newline, which digit places are read from.
    digit_ids: tuple[int, ...] = ()
    equals_id: int = -1
    newline_id: int = -1


POSITIONS = ("learned", "none", "abacus", "coupled")
# Relative places: differences past this, on either side, share one bias (and local
# places do not attend across them). Addition needs 0 and 1 (the digits of the place
# being written and of the place below); training on numbers of up to n digits trains
# every difference up to n + 1, so the shared biases are trained too.
PLACE_DISTANCE = 4
# Buckets: each difference -D..D, then farther below, farther above, then (query placed,
# key not), (query not, key placed), (neither): operators, newlines and end markers have
# no place.
FAR_BELOW, FAR_ABOVE = 2 * PLACE_DISTANCE + 1, 2 * PLACE_DISTANCE + 2
PLACE_BUCKETS = 2 * PLACE_DISTANCE + 6
BIASED_PLACES = ("relative", "local")  # place tables that bias attention instead of embedding

# Named sizes; every field can still be set on its own in a run's config.
PRESETS: dict[str, dict] = {
    # The quickstart's model (0.24M parameters): learns 3-digit addition in minutes on 2
    # cores; 96 wide learned as fast per step as 128 wide, at 0.6x the cost of a step.
    "small": dict(n_layer=2, n_head=4, n_embd=96, dropout=0.0),
    "tiny": dict(n_layer=1, n_head=2, n_embd=32, dropout=0.0),
    # The study's NanoGPT: 10.6M parameters.
    "nanogpt": dict(n_layer=6, n_head=6, n_embd=384, dropout=0.2),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, dropout=0.0),
}


class KVCache:
    """Keys and values of every layer, preallocated for a whole decoding run."""

    def __init__(self, config: GPTConfig, batch: int, length: int, device, dtype):
        shape = (batch, config.n_head, length, config.n_embd // config.n_head)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0  # positions filled so far
        # Where digit places continue from: the digits just before (0 if none), and
        # whether the row is past an `=` (since its last newline).
        self.digit_run = torch.zeros(batch, dtype=torch.long, device=device)
        self.in_answer = torch.zeros(batch, dtype=torch.bool, device=device)
        self.places = torch.zeros(batch, length, dtype=torch.long, device=device)  # for relative places

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        end = self.length + k.size(2)
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


def digit_places(
    idx: torch.Tensor, config: GPTConfig, digits: torch.Tensor, run_before=None, answer_before=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(places, digit run, past `=`) for every token of `idx` (B, T), continuing a row whose
    earlier tokens ended in `run_before` digits and `answer_before` (for the KV cache).
    `digits` (vocab_size,) says which ids are digits.

    A digit's place is its index in its run of digits, from 1; any other character's is 0.
    With coupled positions, `=` and every digit after it (up to the next newline) get one
    place more.
    """
    B, T = idx.shape
    is_digit = digits[idx]
    t = torch.arange(T, device=idx.device).expand(B, T)
    before = torch.zeros(B, dtype=torch.long, device=idx.device) if run_before is None else run_before
    # The latest non-digit at or before t; where there is none, as if it lay `before` + 1
    # places before the start.
    last_other = torch.cummax(torch.where(is_digit, -1 - before[:, None], t), dim=1).values
    run = torch.where(is_digit, t - last_other, 0)
    places = run
    in_answer = torch.zeros_like(is_digit)
    if config.positions == "coupled":
        unset = torch.full_like(t, -1)
        last_equals = torch.cummax(torch.where(idx == config.equals_id, t, unset), dim=1).values
        last_newline = torch.cummax(torch.where(idx == config.newline_id, t, unset), dim=1).values
        carried = answer_before[:, None] if answer_before is not None else torch.zeros_like(in_answer[:, :1])
        in_answer = (last_equals > last_newline) | (carried & (last_newline < 0))
        places = places + ((is_digit | (idx == config.equals_id)) & in_answer)
    return places, run, in_answer


def place_buckets(query_places: torch.Tensor, key_places: torch.Tensor) -> torch.Tensor:
    """(B, T, S) bias buckets for queries with places (B, T) over keys with places (B, S):
    the difference (query's place minus key's) where both have a place, else one of three
    fixed buckets."""
    q, k = query_places[:, :, None], key_places[:, None, :]
    q_placed, k_placed = q > 0, k > 0
    d = q - k
    difference = torch.where(
        d > PLACE_DISTANCE, FAR_BELOW, torch.where(d < -PLACE_DISTANCE, FAR_ABOVE, d + PLACE_DISTANCE)
    )
    unplaced = FAR_ABOVE + 1 + q_placed.long() + 2 * k_placed.long()
    return torch.where(q_placed & k_placed, difference, unplaced)


def sinusoidal_places(n: int, dim: int) -> torch.Tensor:
    """(n, dim) codes of places 0..n-1: place 0 (not a digit) all zeros, place p the
    Transformer's sines and cosines of p, scaled to the learned embeddings' 0.02 per entry."""
    freqs = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = torch.arange(n, dtype=torch.float32)[:, None] * freqs[None, :]
    codes = torch.zeros(n, dim)
    codes[:, 0::2], codes[:, 1::2] = torch.sin(angles), torch.cos(angles[:, : dim // 2])
    codes[0] = 0.0
    return 0.02 * math.sqrt(2.0) * codes


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.layer = layer
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.place_bias = nn.Embedding(PLACE_BUCKETS, config.n_head) if config.place_table in BIASED_PLACES else None

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, places=None) -> torch.Tensor:
        """`places`: for relative or local places, (buckets (B, T, S), blocked (B, 1, T, S)):
        each query-key pair's bias bucket, and the pairs it may not attend (future keys;
        for local places, far digits), the same for every layer."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.append(self.layer, k, v)
        # New queries see every cached position and, among themselves, only earlier ones.
        # A single new token sees everything: no mask. Several (the prompt, cache empty):
        # the ordinary causal mask.
        assert T == 1 or k.size(2) == T, "prefill must start from an empty cache"
        dropout = self.dropout if self.training else 0.0
        if places is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=T > 1)
        else:  # relative places: a bias per head, with the causal (and local) mask folded in
            buckets, blocked = places
            bias = self.place_bias(buckets).permute(0, 3, 1, 2).masked_fill(blocked, float("-inf"))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, places=None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, places)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                # Absolute positions, or digit places (0: not a digit), or nothing.
                wpe=nn.Embedding(config.block_size + (config.positions != "learned"), config.n_embd)
                if config.positions != "none" and config.place_table == "learned"
                else None,
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        digits = torch.zeros(config.vocab_size, dtype=torch.bool)
        digits[list(config.digit_ids)] = True
        self.register_buffer("digits", digits, persistent=False)
        if config.place_table == "sinusoidal":
            self.register_buffer(
                "place_codes", sinusoidal_places(config.block_size + 1, config.n_embd), persistent=False
            )
        self.lm_head.weight = self.transformer.wte.weight  # tied embeddings
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def max_length(self) -> int | None:
        """The longest sequence the model can read: block_size where positions or places
        come from a table of that size; none (None) for no positions, relative or local
        places, whose weights do not depend on the length."""
        unbounded = self.config.positions == "none" or self.config.place_table in BIASED_PLACES
        return None if unbounded else self.config.block_size

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, cache: KVCache | None = None, offsets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for every position of `idx` (B, T); with a cache, `idx` continues it.

        `offsets` (B,) shift each row's position ids (or digit places): training with random
        shifts makes the absolute positions carry no meaning of their own, so the model must
        find the digits it needs by content (the operators), which is what lets a number's
        digits line up whatever the operands' lengths; for digit places, it trains the
        embeddings of places beyond the longest training number.
        """
        start = cache.length if cache is not None else 0
        T = idx.size(1)
        end = start + T + (int(offsets.max()) if offsets is not None else 0)
        if self.max_length is not None and end > self.max_length:
            raise ValueError(f"positions beyond block_size {self.config.block_size}")
        x = self.transformer.wte(idx)
        biased = None
        if self.config.positions == "learned":
            pos = torch.arange(start, start + T, device=idx.device)
            x = x + self.transformer.wpe(pos + offsets[:, None] if offsets is not None else pos)
        elif self.config.positions != "none":
            before = (cache.digit_run, cache.in_answer) if cache is not None else (None, None)
            places, run, in_answer = digit_places(idx, self.config, self.digits, *before)
            if cache is not None:
                cache.digit_run, cache.in_answer = run[:, -1], in_answer[:, -1]
            if offsets is not None:  # shift the places, never the "no place" 0
                places = torch.where(places > 0, places + offsets[:, None], 0)
            if self.config.place_table in BIASED_PLACES:
                if cache is not None:
                    cache.places[:, start : start + T] = places
                buckets = place_buckets(places, cache.places[:, : start + T] if cache is not None else places)
                # A single new token sees every cached key; several (no cache, or the
                # prompt into an empty one) see only earlier ones.
                blocked = ~torch.ones(T, T, dtype=torch.bool, device=idx.device).tril() if T > 1 else False
                if self.config.place_table == "local":  # a digit never sees digits far from its place
                    blocked = blocked | (buckets == FAR_BELOW) | (buckets == FAR_ABOVE)
                biased = (buckets, torch.as_tensor(blocked, device=idx.device).expand_as(buckets)[:, None])
            elif self.config.place_table == "sinusoidal":
                x = x + self.place_codes[places]
            else:
                x = x + self.transformer.wpe(places)
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x, cache, biased)
        if cache is not None:
            cache.length += T
        return self.lm_head(self.transformer.ln_f(x))

    def optimizer(self, lr: float, weight_decay: float, betas: tuple[float, float], fused: bool = False):
        return adamw(self, lr, weight_decay, betas, fused)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        finished=None,
        use_cache: bool = True,
        temperature: float = 0.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue every row of `idx` (B, T) by up to `max_new_tokens` tokens.

        Greedy where `temperature` is 0, else sampled (top-k). `finished(new)` gets the
        (B, n) tokens generated so far and says which rows are done; decoding stops when
        all are. Without the cache every step recomputes the whole sequence (the baseline
        the cache is measured against; both give the same tokens).
        """
        B, T = idx.shape
        if self.max_length is not None:
            max_new_tokens = min(max_new_tokens, self.max_length - T)
        cache = None
        if use_cache:
            dtype = next(self.parameters()).dtype
            cache = KVCache(self.config, B, T + max_new_tokens, idx.device, dtype)
        new = idx.new_empty((B, 0))
        step_input = idx
        for _ in range(max_new_tokens):
            logits = self(step_input, cache)[:, -1, :] if use_cache else self(torch.cat([idx, new], 1))[:, -1, :]
            next_id = next_token(logits, temperature, top_k, generator)
            new = torch.cat([new, next_id], 1)
            step_input = next_id
            if finished is not None and bool(finished(new).all()):
                break
        return new


def adamw(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float], fused: bool = False):
    """AdamW on the trainable parameters, with weight decay on matrices only (not biases,
    norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)


def next_token(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, 1) next ids from last-position logits (B, V): argmax where `temperature` is 0,
    else sampled from the top k."""
    if temperature <= 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
