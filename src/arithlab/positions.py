"""Position schemes: what tells the model where a token is, each one small class.

`model.positions` says which position each token has (`POSITIONS`):
- `learned`: its index in the sequence, GPT-2's learned absolute positions (the study's);
- `none`: no position at all (NoPE): the causal mask alone tells order;
- `abacus`: a digit's place in its own number, 1 for the first digit written, 2 for the
  next...; other characters have none (place 0) (McLeish et al. 2024). With numbers written
  least significant digit first (format `reverse_all`) digits of equal significance share a
  place, whatever the numbers' lengths;
- `coupled`: abacus places, with everything from `=` on shifted by one place, so that the
  character from which the model writes the answer's i-th digit has place i, the same as the
  operands' i-th digits it needs (position coupling, Cho et al. 2024).

`model.place_table` says how those positions reach the model (`PLACE_TABLES`):
- `learned`: a learned embedding per position, added to the token's;
- `sinusoidal`: fixed sinusoids of the place, in which the code of place p - 1 is the same
  rotation of the code of p for every p: attention that learns "the digit one place below"
  then works at places and distances that never occurred together in training;
- `relative`: no embedding; every attention head adds a learned bias for the difference of
  the query's and the key's places, one bias for each difference up to PLACE_DISTANCE and
  one for all larger ones below, one for all above (as T5 buckets distances). A model trained
  on 10-digit numbers then meets no place difference at 20 digits that it has not trained:
  an embedded place table relates places 1 and 15 however it happens to, this bias as "far
  apart";
- `local`: relative, and digits farther apart than PLACE_DISTANCE do not attend to each other
  at all: a longer number then brings no more keys to spread attention over, so each place
  is computed exactly as at the trained lengths (for tasks whose digits depend on nearby
  places only, as addition's do).

Each class declares its constraints: a digit-place scheme needs a format that writes numbers
least significant digit first (`digit_places`), the tables other than `learned` are for
digit places only (`places_only`), and a scheme or table whose weights cover only positions
below block_size binds the model to that length (`bounded`). config.check enforces the first
two; GPT.max_length reads the last.

Adding a scheme is one class here and its entry in the registry below; the config's choices
and checks, and the model, read it from there.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

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


# --- model.positions: which position each token has -----------------------------------


class Positions:
    """Base: a token's position id, shifted by the training offsets, or none."""

    name = ""
    # The ids are digits' places in their numbers: they line up digits of equal significance
    # only where the format writes numbers least significant digit first.
    digit_places = False
    bounded = True  # ids can reach block_size: a table of them binds the model's length

    def rows(self, block_size: int) -> int:
        """How many distinct ids a model of `block_size` tokens can give: the size of a table
        of them (0: no ids, no table)."""
        return block_size

    def ids(self, idx: torch.Tensor, model, cache, offsets: torch.Tensor | None) -> torch.Tensor | None:
        """The ids of the tokens `idx` (B, T) that continue `cache` (None: from the start);
        `model` gives the config and which ids are digits."""
        raise NotImplementedError


class Learned(Positions):
    name = "learned"

    def ids(self, idx, model, cache, offsets):
        start = cache.length if cache is not None else 0
        ids = torch.arange(start, start + idx.size(1), device=idx.device)
        if offsets is None:
            return ids
        return ids + (offsets if offsets.dim() == 2 else offsets[:, None])  # per token, or per row


class NoPositions(Positions):
    name = "none"
    bounded = False

    def rows(self, block_size: int) -> int:
        return 0

    def ids(self, idx, model, cache, offsets):
        return None


class Abacus(Positions):
    name = "abacus"
    digit_places = True
    coupled = False  # `=` and the answer's digits one place up (Coupled)

    def rows(self, block_size: int) -> int:
        return block_size + 1  # places 1..block_size, and 0: no place

    def ids(self, idx, model, cache, offsets):
        before = (cache.number_digits, cache.in_answer) if cache is not None else (None, None)
        places, number_digits, in_answer = digit_places(idx, model.config, model.digits, *before)
        if cache is not None:
            cache.number_digits, cache.in_answer = number_digits[:, -1], in_answer[:, -1]
        if offsets is not None:  # shift the places, never the "no place" 0
            places = torch.where(places > 0, places + offsets[:, None], 0)
        return places


class Coupled(Abacus):
    name = "coupled"
    coupled = True


POSITIONS: dict[str, Positions] = {p.name: p for p in (Learned(), NoPositions(), Abacus(), Coupled())}


def digit_places(
    idx: torch.Tensor, config, digits: torch.Tensor, digits_before=None, answer_before=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(places, digits of the number so far, past `=`) for every token of `idx` (B, T),
    continuing a row whose earlier tokens ended in a number of `digits_before` digits (0: not
    in a number) and `answer_before` (for the KV cache). `digits` (vocab_size,) says which
    ids are digits; `config` (a GPTConfig) which scheme, and the ids of `=` and newline.

    A digit's place is its index in its number (the digits written one after another), from 1; any
    other character's is 0. With coupled positions, `=` and every digit after it (up to the
    next newline) get one place more.
    """
    B, T = idx.shape
    is_digit = digits[idx]
    t = torch.arange(T, device=idx.device).expand(B, T)
    before = torch.zeros(B, dtype=torch.long, device=idx.device) if digits_before is None else digits_before
    # The latest non-digit at or before t; where there is none, as if it lay `before` + 1
    # places before the start.
    last_other = torch.cummax(torch.where(is_digit, -1 - before[:, None], t), dim=1).values
    number_digits = torch.where(is_digit, t - last_other, 0)
    places = number_digits
    in_answer = torch.zeros_like(is_digit)
    if POSITIONS[config.positions].coupled:
        unset = torch.full_like(t, -1)
        last_equals = torch.cummax(torch.where(idx == config.equals_id, t, unset), dim=1).values
        last_newline = torch.cummax(torch.where(idx == config.newline_id, t, unset), dim=1).values
        carried = answer_before[:, None] if answer_before is not None else torch.zeros_like(in_answer[:, :1])
        in_answer = (last_equals > last_newline) | (carried & (last_newline < 0))
        places = places + ((is_digit | (idx == config.equals_id)) & in_answer)
    return places, number_digits, in_answer


# --- model.place_table: how the ids reach the model -------------------------------------


class PlaceTable:
    """Base: the ids as an embedding added to the tokens', or as an attention bias."""

    name = ""
    places_only = True  # for digit places (abacus, coupled) only
    bounded = True  # holds ids below its size only
    buckets = 0  # relative: the biases each attention layer learns per head

    def embedding(self, rows: int, dim: int) -> nn.Embedding | None:
        """The learned table (the model's `transformer.wpe`), if this is one."""
        return None

    def codes(self, rows: int, dim: int, std: float) -> torch.Tensor | None:
        """Fixed codes of the ids, if this table has them, at the spread `std` of the
        model's initial weights."""
        return None

    def apply(self, model, x: torch.Tensor, ids: torch.Tensor, cache) -> tuple[torch.Tensor, tuple | None]:
        """(token embeddings `x` with the ids' added, the attention bias or None)."""
        raise NotImplementedError


class LearnedTable(PlaceTable):
    name = "learned"
    places_only = False  # also GPT-2's learned absolute positions

    def embedding(self, rows, dim):
        return nn.Embedding(rows, dim) if rows else None

    def apply(self, model, x, ids, cache):
        return x + model.transformer.wpe(ids), None


class Sinusoidal(PlaceTable):
    name = "sinusoidal"

    def codes(self, rows, dim, std):
        return sinusoidal_places(rows, dim, std)

    def apply(self, model, x, ids, cache):
        return x + model.place_codes[ids], None


class Relative(PlaceTable):
    name = "relative"
    bounded = False  # no weight depends on the length
    buckets = PLACE_BUCKETS
    local = False  # digits farther apart than PLACE_DISTANCE never attend to each other

    def apply(self, model, x, ids, cache):
        """The attention bias: (buckets (B, T, S), blocked (B, 1, T, S)), each query-key
        pair's bias bucket and the pairs it may not attend (future keys; for local places,
        far digits), the same for every layer."""
        start, T = (cache.length if cache is not None else 0), ids.size(1)
        if cache is not None:
            cache.places[:, start : start + T] = ids
        buckets = place_buckets(ids, cache.places[:, : start + T] if cache is not None else ids)
        # A single new token sees every cached key; several (no cache, or the prompt into
        # an empty one) see only earlier ones.
        blocked = ~torch.ones(T, T, dtype=torch.bool, device=ids.device).tril() if T > 1 else False
        if self.local:
            blocked = blocked | (buckets == FAR_BELOW) | (buckets == FAR_ABOVE)
        return x, (buckets, torch.as_tensor(blocked, device=ids.device).expand_as(buckets)[:, None])


class Local(Relative):
    name = "local"
    local = True


PLACE_TABLES: dict[str, PlaceTable] = {t.name: t for t in (LearnedTable(), Sinusoidal(), Relative(), Local())}


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


def sinusoidal_places(n: int, dim: int, std: float) -> torch.Tensor:
    """(n, dim) codes of places 0..n-1: place 0 (not a digit) all zeros, place p the
    Transformer's sines and cosines of p, scaled to the token embeddings' initial spread
    `std` per entry."""
    freqs = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = torch.arange(n, dtype=torch.float32)[:, None] * freqs[None, :]
    codes = torch.zeros(n, dim)
    codes[:, 0::2], codes[:, 1::2] = torch.sin(angles), torch.cos(angles[:, : dim // 2])
    codes[0] = 0.0
    return std * math.sqrt(2.0) * codes
