"""Samplers: which problems a training, validation or test set holds.

`balanced` follows the study (docs/formats.md): the 100 one-digit pairs first, then problems
grouped into cells by (digits of the longer operand, number of carries). Each cell draws
its problems uniformly and exactly (a digit-by-digit count of the problems with a given
number of carries, for any number of digits) from its own seeded stream, and a fixed
sequence of slots decides which cell the next problem comes from. A set of size N takes
the first N slots, so sets of different sizes drawn with the same seed are nested, and
the slots keep the carry counts exactly balanced wherever the quotas can be met.

`uniform` draws both operands uniformly below 10**digits (b from the operation's least
valid b, so that a division never draws b = 0); for a function (sin, sqrt) it
draws x uniformly on the study's interval (sin: [-pi/2, pi/2], sqrt: [1, 10]) and cuts it
to 4 decimals toward minus infinity, `digits` playing no part. Balanced sampling needs
carries, which functions (and multiplication) lack: asking for it is an ArithlabError.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from math import ceil, floor

from arithlab.errors import ArithlabError
from arithlab.tasks import OPERATIONS, SCALE, Problem

SAMPLINGS = ("balanced", "uniform")
# How many draws a cell may reject in a row (duplicates, excluded numbers) before we call
# it exhausted.
_MAX_REJECTS = 2000
# A function's x is drawn on a grid this much finer than 1e-4, then cut to 4 decimals: a
# uniform real, as the study draws it, up to 1e-12.
_FINE = 10**8


def _digit_choices(length: int, position: int) -> range:
    """Digits a number of `length` digits may have at `position` (0 = least significant)."""
    if position >= length:
        return range(0, 1)
    if position == length - 1 and length > 1:
        return range(1, 10)  # no leading zeros
    return range(10)


@cache
def _completions(symbol: str, len_a: int, len_b: int, position: int, carry_in: int) -> tuple[int, ...]:
    """Ways to fill the digits from `position` up, indexed by the carries they produce."""
    width = max(len_a, len_b)
    if position == width:
        return (1,)
    carry_out = OPERATIONS[symbol].carry_out
    counts = [0] * (width - position + 1)
    for x in _digit_choices(len_a, position):
        for y in _digit_choices(len_b, position):
            out = carry_out(x, y, carry_in)
            for rest, n in enumerate(_completions(symbol, len_a, len_b, position + 1, out)):
                counts[rest + out] += n
    return tuple(counts)


@cache
def _digit_pairs(symbol: str, len_a: int, len_b: int, position: int, carry_in: int, carries: int):
    """The digit pairs at `position` and their cumulative counts of completions with
    exactly `carries` carries from here on."""
    carry_out = OPERATIONS[symbol].carry_out
    pairs, cumulative, total = [], [], 0
    for x in _digit_choices(len_a, position):
        for y in _digit_choices(len_b, position):
            out = carry_out(x, y, carry_in)
            tail = _completions(symbol, len_a, len_b, position + 1, out)
            need = carries - out
            n = tail[need] if 0 <= need < len(tail) else 0
            if n:
                total += n
                pairs.append((x, y, out))
                cumulative.append(total)
    return pairs, cumulative


def count_problems(symbol: str, len_a: int, len_b: int, carries: int) -> int:
    """How many problems have operands of exactly these lengths and this many carries."""
    counts = _completions(symbol, len_a, len_b, 0, 0)
    return counts[carries] if 0 <= carries < len(counts) else 0


def draw_with_carries(symbol: str, len_a: int, len_b: int, carries: int, rng: random.Random) -> Problem:
    """A problem drawn uniformly among those with these operand lengths and carries."""
    a = b = 0
    carry, left = 0, carries
    for position in range(max(len_a, len_b)):
        pairs, cumulative = _digit_pairs(symbol, len_a, len_b, position, carry, left)
        x, y, carry = pairs[bisect.bisect_right(cumulative, rng.randrange(cumulative[-1]))]
        a += x * 10**position
        b += y * 10**position
        left -= carry
    return Problem(symbol, a, b)


def _length_weights(symbol: str, width: int, carries: int, spread: bool) -> list[tuple[tuple[int, int], int | float]]:
    """Weights of the operand-length pairs (longer operand `width` digits) given the carries.

    `spread`: the shorter operand's length is uniform over 1..width and the order random
    (the study's multi-digit sets); otherwise every problem of the cell is equally likely
    (operands uniform below 10**width, as in its 3-digit sets).
    """
    pairs = sorted({(width, s) for s in range(1, width + 1)} | {(s, width) for s in range(1, width + 1)})
    weights = []
    for len_a, len_b in pairs:
        n = count_problems(symbol, len_a, len_b, carries)
        if spread and n:
            total = sum(_completions(symbol, len_a, len_b, 0, 0))
            share = 1 / width if len_a == len_b else 1 / (2 * width)
            weights.append(((len_a, len_b), share * n / total))
        else:
            weights.append(((len_a, len_b), n))
    return weights


class _Cell:
    """The seeded stream of distinct problems of one (width, carries) cell."""

    def __init__(self, symbol: str, width: int, carries: int, seed: int, spread: bool, excluded: set[int]):
        self.rng = random.Random(f"{seed}:{symbol}:{width}:{carries}")
        self.symbol, self.carries, self.excluded = symbol, carries, excluded
        weights = [(lengths, w) for lengths, w in _length_weights(symbol, width, carries, spread) if w]
        self.lengths = [lengths for lengths, _ in weights]
        self.weights = [w for _, w in weights]
        self.size = sum(count_problems(symbol, *lengths, carries) for lengths in self.lengths)
        self.seen: set[Problem] = set()
        self.exhausted = not self.lengths

    def draw(self) -> Problem | None:
        for _ in range(_MAX_REJECTS):
            if len(self.seen) >= self.size:
                break
            lengths = self.rng.choices(self.lengths, weights=self.weights)[0]
            problem = draw_with_carries(self.symbol, *lengths, self.carries, self.rng)
            if problem not in self.seen and not {problem.a, problem.b} & self.excluded:
                self.seen.add(problem)
                return problem
        self.exhausted = True
        return None


def _bucket_targets(digits: int, n_extra: int, n_total: int) -> dict[int, float]:
    """How many of the problems beyond the one-digit pairs should have each width."""
    if digits == 3:
        # The study's 3-digit sets: 900*N/10000 problems below 100, the rest below 1000.
        two = 900 * n_total / 10000
        return {2: two, 3: n_extra - two}
    widths = range(2, digits + 1)
    return {d: n_extra * d / sum(widths) for d in widths}


def balanced(symbol: str, digits: int, n: int, seed: int, excluded: Iterable[int] = ()) -> list[Problem]:
    """`n` distinct problems balanced by digits and by carries (docs/formats.md)."""
    excluded = set(excluded)
    if OPERATIONS[symbol].carry_out is None:
        raise ArithlabError(f"balanced sampling needs carries; operation {symbol!r} has none (use uniform)")
    base = [Problem(symbol, a, b) for a in range(10) for b in range(10) if not {a, b} & excluded]
    if n <= len(base):
        # Fewer problems than one-digit pairs: the first n of a seeded shuffle, so that
        # these small sets are nested too.
        random.Random(f"{seed}:base").shuffle(base)
        return base[:n]
    if digits == 1:
        raise ArithlabError(f"1-digit {symbol} has only {len(base)} distinct problems; asked for {n}")
    totals = Counter(p.carries for p in base)
    chosen = {d: 0 for d in range(2, digits + 1)}
    cells: dict[tuple[int, int], _Cell] = {}
    problems = list(base)
    while len(problems) < n:
        targets = _bucket_targets(digits, len(problems) + 1 - len(base), len(problems) + 1)
        problem = _next_problem(symbol, digits, seed, excluded, totals, chosen, targets, cells)
        if problem is None:
            raise ArithlabError(
                f"cannot draw {n} distinct {digits}-digit {symbol} problems "
                f"(only {len(problems)} exist outside the excluded numbers)"
            )
        problems.append(problem)
        totals[problem.carries] += 1
        chosen[problem.digits] += 1
    return problems


def _next_problem(symbol, digits, seed, excluded, totals, chosen, targets, cells) -> Problem | None:
    """The next slot: the carry count furthest below its quota (ties: fewest carries), from
    the width furthest below its share that can have that many carries."""
    spread = digits != 3
    for carries in sorted(range(digits + 1), key=lambda c: (totals[c], c)):
        widths = [d for d in range(max(carries, 2), digits + 1)]
        for width in sorted(widths, key=lambda d: (chosen[d] - targets[d], d)):
            key = (width, carries)
            if key not in cells:
                cells[key] = _Cell(symbol, width, carries, seed, spread, excluded)
            if not cells[key].exhausted and (problem := cells[key].draw()) is not None:
                return problem
    return None


def uniform(symbol: str, digits: int, seed: int) -> Iterator[Problem]:
    """An endless seeded stream of problems: both operands uniform below 10**digits, or a
    function's x uniform on its interval, cut to 4 decimals toward minus infinity."""
    interval = OPERATIONS[symbol].interval
    if interval is not None:
        rng = random.Random(f"{seed}:{symbol}:uniform")
        low, high = ceil(interval[0] * SCALE * _FINE), floor(interval[1] * SCALE * _FINE)
        while True:
            yield Problem(symbol, rng.randint(low, high) // _FINE)
    rng = random.Random(f"{seed}:{symbol}:uniform:{digits}")
    top, least_b = 10**digits, OPERATIONS[symbol].least_b
    while True:
        yield Problem(symbol, rng.randrange(top), rng.randrange(least_b, top))


def of_lengths(symbol: str, lengths_a: list[int], lengths_b: list[int], seed: int) -> Iterator[Problem]:
    """An endless seeded stream of problems whose operands have a length drawn uniformly
    from `lengths_a` and `lengths_b` (digits, no leading zeros), and uniform digits (b from
    the operation's least valid b)."""
    rng = random.Random(f"{seed}:{symbol}:lengths:{lengths_a}:{lengths_b}")

    def number(length: int, least: int = 0) -> int:
        return rng.randrange(max(10 ** (length - 1) if length > 1 else 0, least), 10**length)

    least_b = OPERATIONS[symbol].least_b
    while True:
        yield Problem(symbol, number(rng.choice(lengths_a)), number(rng.choice(lengths_b), least_b))


def take_distinct(
    stream: Iterable[Problem], n: int, avoid: set[Problem], excluded: Iterable[int] = (), partial: bool = False
) -> list[Problem]:
    """The first `n` distinct problems of `stream` that are not in `avoid` and use no
    excluded number; with `partial`, fewer where the stream runs out of new ones (a
    small space such as 1-digit by 1-digit problems), instead of an error."""
    excluded = set(excluded)
    taken: list[Problem] = []
    seen = set(avoid)
    rejects = 0
    for problem in stream:
        if problem in seen or excluded.intersection(problem.operands):
            rejects += 1
            if rejects > _MAX_REJECTS + 10 * n:
                if partial:
                    break
                raise ArithlabError(f"cannot draw {n} distinct problems from this space (got {len(taken)})")
            continue
        seen.add(problem)
        taken.append(problem)
        if len(taken) == n:
            break
    return taken
