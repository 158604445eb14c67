"""GPT: the GPT-2 architecture as in nanoGPT, with a KV cache for decoding.

Pre-LayerNorm blocks, GELU MLPs, input and output embeddings tied, optional biases,
dropout. Attention goes through scaled_dot_product_attention, which picks flash or
memory-efficient kernels where the device has them. How a token's position reaches the
model (learned absolute positions, none, digit places embedded or as attention biases) is
a scheme of positions.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from arithlab.positions import PLACE_TABLES, POSITIONS


@dataclass
class GPTConfig:
    vocab_size: int = 96
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    init_std: float = 0.02  # of the random initial weights
    positions: str = "learned"  # a scheme of positions.POSITIONS
    place_table: str = "learned"  # one of positions.PLACE_TABLES
    # Token ids of the characters 0-9, `=` and newline, which digit places are read from.
    digit_ids: tuple[int, ...] = ()
    equals_id: int = -1
    newline_id: int = -1


class KVCache:
    """Keys and values of every layer, preallocated for a whole decoding."""

    def __init__(self, config: GPTConfig, batch: int, length: int, device, dtype):
        shape = (batch, config.n_head, length, config.n_embd // config.n_head)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0  # positions filled so far
        # Where digit places continue from: the digits of the number just before (0 if
        # none), and whether the row is past an `=` (since its last newline).
        self.number_digits = torch.zeros(batch, dtype=torch.long, device=device)
        self.in_answer = torch.zeros(batch, dtype=torch.bool, device=device)
        self.places = torch.zeros(batch, length, dtype=torch.long, device=device)  # for relative places

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        end = self.length + k.size(2)
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


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
        buckets = PLACE_TABLES[config.place_table].buckets  # relative places: a bias per head and bucket
        self.place_bias = nn.Embedding(buckets, config.n_head) if buckets else None
        # For inspection (GPT.attention_of): the probabilities computed explicitly and kept,
        # which the fused kernels never form.
        self.keep_attention = False
        self.attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, bias=None) -> torch.Tensor:
        """`bias`: for relative places, (buckets (B, T, S), blocked (B, 1, T, S)), as
        positions.Relative gives them."""
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
        if bias is not None:  # relative places: a bias per head, with the causal (and local) mask folded in
            buckets, blocked = bias
            bias = self.place_bias(buckets).permute(0, 3, 1, 2).masked_fill(blocked, float("-inf"))
        if self.keep_attention:
            y = self._attend_explicitly(q, k, v, bias)
        elif bias is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=T > 1)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def forward_at(self, x: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """The attention's output at the places `at` (B, L) only, (B, L, C): queries there,
        keys and values everywhere, each query seeing the places up to its own (training,
        no cache, no relative places)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = _places_of(q, at)
        q, k, v = (t.view(B, t.size(1), self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        visible = torch.arange(T, device=x.device) <= at[..., None]  # (B, L, T)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible[:, None], dropout_p=dropout)
        y = y.transpose(1, 2).reshape(B, at.size(1), C)
        return self.resid_dropout(self.c_proj(y))

    def _attend_explicitly(self, q, k, v, bias) -> torch.Tensor:
        """What scaled_dot_product_attention computes, by its formula (without dropout), so
        that the probabilities can be kept: `self.attention`, (B, heads, T, S)."""
        T, S = q.size(2), k.size(2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if bias is not None:
            scores = scores + bias
        elif T > 1:  # as is_causal: each new query sees the cached keys and the new ones up to itself
            future = ~torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
            scores = scores.masked_fill(future, float("-inf"))
        self.attention = torch.softmax(scores.float(), dim=-1)
        return self.attention.to(v.dtype) @ v


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

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, bias=None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, bias)
        return x + self.mlp(self.ln_2(x))

    def forward_at(self, x: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """The block's output at the places `at` (B, L) only, (B, L, C)."""
        x = _places_of(x, at) + self.attn.forward_at(self.ln_1(x), at)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.positions = POSITIONS[config.positions]
        self.place_table = PLACE_TABLES[config.place_table]
        rows = self.positions.rows(config.block_size)
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=self.place_table.embedding(rows, config.n_embd),  # a learned table of positions, or None
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        digits = torch.zeros(config.vocab_size, dtype=torch.bool)
        digits[list(config.digit_ids)] = True
        self.register_buffer("digits", digits, persistent=False)
        codes = self.place_table.codes(rows, config.n_embd, config.init_std)
        if codes is not None:
            self.register_buffer("place_codes", codes, persistent=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied embeddings
        self._init_weights(config.init_std)

    def _init_weights(self, std: float) -> None:
        def init(module: nn.Module) -> None:
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

        self.apply(init)  # children first: the order (and so each seed's weights) of before
        # GPT-2's scaled init of the residual projections.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))

    @property
    def max_length(self) -> int | None:
        """The longest sequence the model can read: block_size where positions or places
        come from a table of that size; none (None) for no positions, relative or local
        places, whose weights do not depend on the length."""
        return self.config.block_size if self.positions.bounded and self.place_table.bounded else None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        cache: KVCache | None = None,
        offsets: torch.Tensor | None = None,
        scored: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for every position of `idx` (B, T); with a cache, `idx` continues it.

        `scored` (B, T, bool; training): only the logits the loss reads, (N, V) in the order
        of `logits[scored]`. The last block then runs its queries, MLP and head at those
        places only: the same logits, and a quarter less work for the answer objective,
        where most of each row is the prompt.

        `offsets` (B,) shift each row's position ids (or digit places): training with random
        shifts makes the absolute positions carry no meaning of their own, so the model must
        find the digits it needs by content (the operators), which is what lets a number's
        digits line up whatever the operands' lengths; for digit places, it trains the
        embeddings of places beyond the longest training number. `offsets` (B, T) shift each
        token's position id (`train.position_gaps`: batches.number_gaps).
        """
        T = idx.size(1)
        end = (cache.length if cache is not None else 0) + T + (int(offsets.max()) if offsets is not None else 0)
        if self.max_length is not None and end > self.max_length:
            raise ValueError(f"positions beyond block_size {self.config.block_size}")
        x = self.transformer.wte(idx)
        bias = None  # relative places bias attention instead of adding to x
        ids = self.positions.ids(idx, self, cache, offsets)
        if ids is not None:
            x, bias = self.place_table.apply(self, x, ids, cache)
        x = self.transformer.drop(x)
        blocks = self.transformer.h
        # Relative places bias the whole (T, T) attention: those models run every place.
        only_scored = scored is not None and bias is None and cache is None and not bool(scored.all())
        for block in blocks[:-1] if only_scored else blocks:
            x = block(x, cache, bias)
        if cache is not None:
            cache.length += T
        if only_scored:
            at, kept = _scored_places(scored)
            return self.lm_head(self.transformer.ln_f(blocks[-1].forward_at(x, at)))[kept]
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits if scored is None else logits[scored]

    @torch.no_grad()
    def attention_of(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, T, V), attention probabilities (n_layer, B, n_head, T, T)) for `idx`
        read from the start, every layer's attention computed explicitly (slower than the
        fused kernels of the ordinary forward)."""
        layers = [block.attn for block in self.transformer.h]
        for attn in layers:
            attn.keep_attention = True
        try:
            logits = self(idx)
            return logits, torch.stack([attn.attention for attn in layers])
        finally:
            for attn in layers:
                attn.keep_attention, attn.attention = False, None

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
        if self.max_length is not None:
            max_new_tokens = min(max_new_tokens, self.max_length - idx.size(1))
        logits = self.decoder(idx, max_new_tokens, use_cache)
        new = idx.new_empty((idx.size(0), 0))
        tokens = idx
        for _ in range(max_new_tokens):
            next_id = next_token(logits(tokens), temperature, top_k, generator)
            new = torch.cat([new, next_id], 1)
            tokens = next_id if use_cache else torch.cat([idx, new], 1)
            if finished is not None and bool(finished(new).all()):
                break
        return new

    def decoder(self, idx: torch.Tensor, max_new_tokens: int, use_cache: bool):
        """`logits(tokens)` for decoding `idx`: the (B, V) logits of the token after `tokens`,
        which are, with the cache (made here for the whole decoding), the tokens it has not
        seen yet (the prompt, then each new token); without it, the whole sequence so far."""
        B, T = idx.shape
        dtype = next(self.parameters()).dtype
        cache = KVCache(self.config, B, T + max_new_tokens, idx.device, dtype) if use_cache else None

        def logits(tokens: torch.Tensor) -> torch.Tensor:
            return self(tokens, cache)[:, -1]

        return logits


def _places_of(x: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """The rows of `x` (B, T, C) at the places `at` (B, L): (B, L, C)."""
    return x.gather(1, at[..., None].expand(-1, -1, x.size(2)))


def _scored_places(scored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(places (B, L), kept (B, L)) for a (B, T) mask: each row's scored places in order,
    padded to the most any row has (L) with other places of the row, which `kept` marks
    False, so that `out[kept]` is in the order of `scored`'s True entries."""
    counts = scored.sum(1)
    most = max(int(counts.max()), 1)
    places = torch.argsort((~scored).to(torch.int8), dim=1, stable=True)[:, :most]
    return places, torch.arange(most, device=scored.device) < counts[:, None]


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
