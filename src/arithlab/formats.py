"""Data formats: how a problem is written as a training sample, prompted and read back.

Byte for byte as the study writes them (docs/formats.md). A format is a small object with
three methods (`render`, `prompt`, `parse`) plus the stopping rule decoding needs; formats
are registered by name in `FORMATS`. Which operations a format writes is said by the
operations themselves (tasks.OPERATIONS); scratchpad formats also look up a step writer
per operation, one entry in their table.

Sine and square root (plain and detailed) are computed exactly, in integers of 1e-4 units,
where the study computes in floats and cuts with floor(v * 10**4) / 10**4. The two agree
except where a value lies on, or within float error (~1e-16) of, a multiple of 1e-4: there
the float cut can land one unit (1e-4) off. Over every 4-decimal x of the sampling ranges
(31,416 sines, 90,001 square roots), a plain float transcription of each formula
(math.sin, math.sqrt, x**n/math.factorial(n), 1/2*(v + x/v), each cut as above) differs
from ours in:
- plain sine: none (sin of a nonzero rational is irrational, and none came that close);
- plain square root: 21 of the 217 perfect squares k^2/10**4, where the float root is a
  hair below k/100 and cut one unit lower (sqrt(1.2544) = 1.12: floats give 1.1199);
- detailed sine: the answer in 561 x, all but one with |x| < 0.054: there the last terms
  (x^7/7!, x^9/9!) are too small to move a float sum off the grid point it sits on,
  while the exact sum moves just off it and a subtracted term cuts it one unit lower
  (sin(-0.0536): exact x_4 = -0.0538, floats -0.0537), and float sums sitting a hair off
  a grid point go either way; the other is x = 0.6, whose x_1 = 0.6 - 0.036 = 0.564 is
  exact (x^3/6 is a multiple of 1e-4 when x is a multiple of 0.3; floats give 0.5639);
- detailed square root: x_1 in 4,230 x, where the half-sum (x_0 + x/x_0)/2 is exactly a
  multiple of 1e-4 (sqrt(1.002): exact 1.001, floats 1.0009); Newton's next steps absorb
  that, and the answer x_4 differs in 21 x, all perfect squares.
Printed numbers never differ: a 4-decimal value is printed as Python prints its float.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property
from itertools import zip_longest
from typing import ClassVar

from arithlab.errors import ArithlabError
from arithlab.tasks import OPERATIONS, SCALE, Problem, digits_of, units_text

# Characters a wrong answer may run on past the true answer's length before decoding stops.
DECODE_SLACK = 8


class Format:
    """Base: a sample is `prompt(problem)` followed by the answer text the model must write."""

    name = ""
    # Where a format is a variant of another, the name operations list it under.
    family: str | None = None
    # Decoding asks `is_complete` only after one of these characters: cheap stopping.
    stop_chars = "\n"
    # Operands written least significant digit first: what abacus and coupled places need.
    digits_from_least = False
    # A sample is one line: the newline after the answer ends it.
    one_line = False

    def prompt(self, problem: Problem) -> str:
        raise NotImplementedError

    def render(self, problem: Problem) -> str:
        raise NotImplementedError

    def completion(self, problem: Problem) -> str:
        """What follows the prompt in a sample: the answer (and its steps) and its end marker."""
        return self.render(problem)[len(self.prompt(problem)) :]

    def parse(self, text: str, problem: Problem | None = None) -> int | Decimal | None:
        """The answer in `text` (what followed the prompt), or None where it does not parse:
        an exact integer, or a decimal number (a Decimal) where `problem` is a function's
        (sin, sqrt). Without the problem, an integer."""
        raise NotImplementedError

    def target(self, problem: Problem) -> int | Decimal:
        """The answer this format's sample states, which exact match is scored against."""
        return problem.answer

    def is_complete(self, text: str) -> bool:
        """Whether generated `text` holds the whole answer, so decoding can stop."""
        raise NotImplementedError

    def max_new_tokens(self, problem: Problem) -> int:
        """The decoding budget: the true answer's length plus a little slack."""
        return len(self.completion(problem)) + DECODE_SLACK

    @cached_property
    def operations(self) -> tuple[str, ...]:
        """The symbols of the operations whose registry entry lists this format (or its family)."""
        listed_as = self.family or self.name
        return tuple(op.symbol for op in OPERATIONS.values() if listed_as in op.formats)

    def supports(self, problem: Problem) -> bool:
        return problem.op in self.operations

    def check(self, problem: Problem) -> None:
        if not self.supports(problem):
            raise ArithlabError(
                f"format {self.name!r} does not support {problem.question!r} (operations: {' '.join(self.operations)})"
            )


_INTEGER = re.compile(r"-?[0-9]+")


def _to_int(text: str) -> int | None:
    """The integer `text` spells exactly (no spaces, signs other than -, or underscores)."""
    if not _INTEGER.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # beyond Python's limit on digits converted at once
        return None


_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _to_number(text: str, problem: Problem | None) -> int | Decimal | None:
    """The number `text` spells exactly: a decimal (`0.4794`, `-0.4795`, `2`) read exactly as
    a Decimal for a function's problem, an integer otherwise."""
    if problem is None or not problem.is_function:
        return _to_int(text)
    return Decimal(text) if _DECIMAL.fullmatch(text) else None


def _line_after(text: str, marker: str) -> str | None:
    """The line that follows `marker` in `text`, if that line is finished."""
    start = text.find(marker)
    if start < 0:
        return None
    rest = text[start + len(marker) :]
    end = rest.find("\n")
    return None if end < 0 else rest[:end]


class Plain(Format):
    """`128+367=495\\n`: the answer as written by hand."""

    name = "plain"
    one_line = True

    def prompt(self, problem: Problem) -> str:
        return f"{problem.question}="

    def render(self, problem: Problem) -> str:
        self.check(problem)
        return f"{problem.question}={problem.answer_text}\n"

    def parse(self, text: str, problem: Problem | None = None) -> int | Decimal | None:
        end = text.find("\n")
        return None if end < 0 else _to_number(text[:end], problem)

    def is_complete(self, text: str) -> bool:
        return "\n" in text


class Reverse(Format):
    """`$128+367=594$\\n`: the answer written least significant digit first, in `$`s."""

    name = "reverse"
    stop_chars = "$"
    one_line = True

    def prompt(self, problem: Problem) -> str:
        return f"${problem.question}="

    def render(self, problem: Problem) -> str:
        self.check(problem)
        # The whole answer string is reversed, so a minus sign goes last: 932-.
        return f"{self.prompt(problem)}{str(problem.answer)[::-1]}$\n"

    def parse(self, text: str, problem: Problem | None = None) -> int | Decimal | None:
        end = text.find("$")
        return None if end < 0 else _to_number(text[:end][::-1], problem)

    def is_complete(self, text: str) -> bool:
        return "$" in text


class ReverseAll(Reverse):
    """`$821+763=5941$\n`: operands and answer all least significant digit first, so that
    digits of equal significance come in the same order in every number, whatever its
    length (for length generalization: `abacus` and `coupled` positions)."""

    name = "reverse_all"
    digits_from_least = True

    def prompt(self, problem: Problem) -> str:
        a, b = (str(n)[::-1] for n in problem.operands)
        return f"${a}{problem.op}{b}="


class ReversePadded(ReverseAll):
    """`$8210+7630=5940$\n`: reverse_all with both operands and the sum zero-padded to one
    digit more than the longer operand, so that the numbers of a sample have one length and
    the answer ends after exactly as many digits as each operand has: ending it is no longer
    a matter of how long training answers were (the position-coupling paper's format)."""

    name = "reverse_pad"

    @staticmethod
    def _width(problem: Problem) -> int:
        return max(len(str(n)) for n in problem.operands) + 1

    def prompt(self, problem: Problem) -> str:
        a, b = (_reversed_padded(n, self._width(problem)) for n in problem.operands)
        return f"${a}{problem.op}{b}="

    def render(self, problem: Problem) -> str:
        self.check(problem)
        return f"{self.prompt(problem)}{_reversed_padded(problem.answer, self._width(problem))}$\n"


class PartialProducts(ReverseAll):
    """`$321*654=837000+051600=888600+002940=880650$\n` (123*456 = 56088): multiplication
    as a chain of reverse additions, every number least significant digit first and
    zero-padded to the product's largest width (len a + len b digits). The first number is
    a times b's lowest digit; then, for each next digit of b, a times that digit shifted to
    its place (`+051600` is 6150), and the running sum (`=888600` is 6888). The last sum is
    the product. Each digit the model writes then depends on a few digits at the same place
    of numbers it has just written (or of a), at a fixed distance within a problem: the
    one-digit multiplications and reverse additions a small model learns, where the whole
    product at once (reverse, reverse_all) needs every digit pair of a and b."""

    name = "partial_products"

    def render(self, problem: Problem) -> str:
        self.check(problem)
        width = len(str(problem.a)) + len(str(problem.b))
        chain, total = [], 0
        for place, digit in enumerate(reversed(digits_of(problem.b))):
            total += problem.a * digit * 10**place
            part = self._partial(problem.a, digit, place, width)
            chain.append(part if place == 0 else f"+{part}={_reversed_padded(total, width)}")
        return f"{self.prompt(problem)}{''.join(chain)}$\n"

    def _partial(self, a: int, digit: int, place: int, width: int) -> str:
        """a x digit, shifted to the place of that digit of b, as the chain writes it."""
        return _reversed_padded(a * digit * 10**place, width)

    def parse(self, text: str, problem: Problem | None = None) -> int | Decimal | None:
        """The last number of the chain (the product), before the closing `$`."""
        end = text.find("$")
        return None if end < 0 else _to_int(re.split("[=:]", text[:end])[-1][::-1])


class PartialCarries(PartialProducts):
    """`$321*654=011000:837000+001100:051600=888600+000100:002940=880650$\n` (123*456):
    partial_products with the carries of each one-digit product written before it, as a row
    of the same width and places (`011000`: 3*6=18 carries 1 into the tens, 2*6+1=13
    carries 1 into the hundreds). Each digit of a product is then its digit of a times the
    multiplier digit plus the carry at its place one row up, and each carry comes from the
    carry just written before it: the model holds no carry unwritten, where partial_products'
    last errors were carries of the one-digit products."""

    name = "partial_carries"

    def _partial(self, a: int, digit: int, place: int, width: int) -> str:
        carries, carry = [0] * width, 0
        for i, x in enumerate(reversed(digits_of(a))):
            carry = (x * digit + carry) // 10
            carries[place + i + 1] = carry
        return "".join(map(str, carries)) + ":" + super()._partial(a, digit, place, width)


def _reversed_padded(n: int, width: int) -> str:
    """n least significant digit first, zero-padded to `width` digits."""
    return str(n).zfill(width)[::-1]


def _digit_list(digits: list[int]) -> str:
    return "[" + ",".join(str(d) for d in digits) + "]"


def _spaced(n: int) -> str:
    """`-2 3 9`: an integer's digits separated by spaces, its sign on the first."""
    return "-" * (n < 0) + " ".join(str(abs(n)))


def _digit_pairs(problem: Problem) -> list[tuple[int, int]]:
    """Per digit position, least significant first: the digits of a and b there; past the
    shorter operand's end its digit counts as 0."""
    return list(zip_longest(digits_of(problem.a)[::-1], digits_of(problem.b)[::-1], fillvalue=0))


def _addition_steps(problem: Problem):
    """Per digit position, least significant first: (x, y, carry in, sum)."""
    carry = 0
    for x, y in _digit_pairs(problem):
        total = x + y + carry
        yield x, y, carry, total
        carry = total // 10


def _subtraction_steps(problem: Problem):
    """Per digit position, least significant first: (x, y, borrow in, A, borrow out), borrows
    being 0 or -1. A is x - y + borrow in, plus 10 where that is negative, except at the last
    position, where it stays negative and so carries the sign of the answer."""
    pairs = _digit_pairs(problem)
    borrow = 0
    for i, (x, y) in enumerate(pairs):
        diff = x - y + borrow
        value = diff + 10 if diff < 0 and i < len(pairs) - 1 else diff
        borrow_out = -1 if diff < 0 else 0
        yield x, y, borrow, value, borrow_out
        borrow = borrow_out


def _combining_line(values: list[int]) -> str:
    """`-300+61=-239`: the first A value (most significant) x 10^(k-1), plus the remaining A
    digits read as one number (0 when there are none)."""
    lead = values[0] * 10 ** (len(values) - 1)
    rest = int("".join(str(v) for v in values[1:]) or "0")
    return f"{lead}+{rest}={lead + rest}"


def _simplified_addition(problem: Problem, rng_a: random.Random | None, rng_c: random.Random | None):
    """(step lines, answer line); `rng_a` / `rng_c` supply the ablation's random A and C
    values, None where they are the true ones."""
    lines = []
    for _, _, _, total in _addition_steps(problem):
        a = rng_a.randint(0, 9) if rng_a else total % 10
        c = rng_c.randint(0, 1) if rng_c else total // 10
        lines.append(f"A->{a} , C->{c}")
    return lines, str(problem.answer)


def _simplified_subtraction(problem: Problem, rng_a: random.Random | None, rng_c: random.Random | None):
    """Step lines, then the combining line that ends the steps. In the ablation, C is drawn
    from {-1, 0} and the combining line sums the A values written, so only the answer is true."""
    steps = list(_subtraction_steps(problem))
    lines, values = [], []
    for i, (_, _, _, a, c) in enumerate(steps):
        if rng_a:
            # The range the true A takes: 0-9, but the last keeps its sign, down to 0-9 = -9,
            # or 0-9-1 = -10 where a lower position can borrow.
            a = rng_a.randint(0 if i < len(steps) - 1 else -10 if i else -9, 9)
        if rng_c:
            c = rng_c.choice((-1, 0))
        lines.append(f"A->{a} , C->{c}")
        values.insert(0, a)
    return [*lines, _combining_line(values)], str(problem.answer)


class Simplified(Format):
    """`Input:\\n128+367\\nTarget:\\nA->5 , C->1\\n...A->4 , C->0.\\n495\\n`.

    `random_a` / `random_c` give the study's ablation: same layout, random A (0-9) and/or
    C (0-1) values, drawn from a generator seeded by the problem so data are reproducible.
    The study ablates addition only; for subtraction A and C are drawn in the ranges the
    true ones take (see `_simplified_subtraction`).
    """

    stop_chars = "\n"
    family = "simplified"
    writers: ClassVar[dict[str, Callable]] = {"+": _simplified_addition, "-": _simplified_subtraction}

    def __init__(self, name: str = "simplified", random_a: bool = False, random_c: bool = False):
        self.name, self.random_a, self.random_c = name, random_a, random_c

    def prompt(self, problem: Problem) -> str:
        return f"Input:\n{problem.question}\nTarget:\n"

    def render(self, problem: Problem) -> str:
        self.check(problem)
        rng = random.Random(zlib.crc32(f"{self.name}:{problem.question}".encode()))
        lines, answer = self.writers[problem.op](
            problem, rng if self.random_a else None, rng if self.random_c else None
        )
        return self.prompt(problem) + "\n".join(lines) + f".\n{answer}\n"

    def parse(self, text: str, problem: Problem | None = None) -> int | Decimal | None:
        line = _line_after(text, ".\n")
        return None if line is None else _to_number(line, problem)

    def is_complete(self, text: str) -> bool:
        return _line_after(text, ".\n") is not None


def _headers(xs: list[int], ys: list[int]) -> list[str]:
    return [f"{_digit_list(xs)} has {len(xs)} digits.", f"{_digit_list(ys)} has {len(ys)} digits."]


def _detailed_addition(problem: Problem) -> tuple[list[str], list[int]]:
    xs, ys = digits_of(problem.a), digits_of(problem.b)
    lines = _headers(xs, ys)
    written: list[int] = []
    carry = 0
    for x, y, carry_in, total in _addition_steps(problem):
        lines.append(
            f"{_digit_list(xs)} + {_digit_list(ys)} , A={_digit_list(written)} , C={carry_in} , "
            f"{x}+{y}+{carry_in}={total} , A->{total % 10} , C->{total // 10}"
        )
        written.insert(0, total % 10)
        carry = total // 10
        xs, ys = xs[:-1], ys[:-1]
    lines.append(f"[] + [] , A={_digit_list(written)} C={carry} , END")
    return lines, ([1] if carry else []) + written


def _detailed_subtraction(problem: Problem) -> tuple[list[str], str]:
    xs, ys = digits_of(problem.a), digits_of(problem.b)
    lines = _headers(xs, ys)
    written: list[int] = []
    for x, y, borrow_in, value, borrow in _subtraction_steps(problem):
        plus_ten = "+10" if value != x - y + borrow_in else ""  # the borrow, spelled out
        # The borrow in is written as a subtrahend: 6-2-1 for C=-1, 7-8-0 for C=0.
        lines.append(
            f"{_digit_list(xs)} - {_digit_list(ys)} , A={_digit_list(written)} , C={borrow_in} , "
            f"{x}-{y}-{-borrow_in}{plus_ten}={value} , A->{value} , C->{borrow}"
        )
        written.insert(0, value)
        xs, ys = xs[:-1], ys[:-1]
    lines += [f"[] - [] , A={_digit_list(written)}", f"{_combining_line(written)} , END"]
    return lines, _spaced(problem.answer)


def _detailed_multiplication(problem: Problem) -> tuple[list[str], list[int]]:
    """One line per multiplier digit, least significant first: A = multiplicand x digit,
    B = A x k for k = 10^position, C the running sum of the Bs."""
    xs = digits_of(problem.a)
    lines = _headers(xs, digits_of(problem.b))
    total = 0
    for i, y in enumerate(reversed(digits_of(problem.b))):
        part, k = problem.a * y, 10**i
        lines.append(
            f"{_digit_list(xs)} * {y} , A={_digit_list(digits_of(part))} , k={k} , "
            f"B={_digit_list(digits_of(part * k))} , C={total}+{part * k}={total + part * k}"
        )
        total += part * k
    lines[-1] += " , END"
    return lines, digits_of(total)


def _detailed_sine(problem: Problem) -> tuple[list[str], str]:
    """Taylor series, 4 terms: x_k = x_(k-1) -/+ x^n/n! (n = 3, 5, 7, 9), each partial sum
    cut to 4 decimals toward minus infinity and the next one built on the cut value; the
    answer is x_4 (0.4792 for sin(0.5), whose true value is 0.4794).

    Exact, in integers of 1e-4 units: x_k = floor((x_(k-1) * D -/+ X^n) / D), X = x * 10**4,
    D = 10**(4(n-1)) * n!. Where this differs from the study's floats: see the module's
    docstring (mostly |x| < 0.054, where a term too small to move a float sum still moves
    the exact one off the 1e-4 grid).
    """
    x = problem.a
    lines, value = [f"x_0={units_text(x)}"], x
    for k, n in enumerate((3, 5, 7, 9), start=1):
        sign = -1 if k % 2 else 1
        denominator = 10 ** (4 * (n - 1)) * math.factorial(n)
        value = (value * denominator + sign * x**n) // denominator
        lines.append(f"x_{k}: x_{k - 1} {'-' if sign < 0 else '+'} 1/{n}! * (x^{n}) , x_{k}={units_text(value)}")
    lines[-1] += " , END"
    return lines, units_text(value)


def _detailed_square_root(problem: Problem) -> tuple[list[str], str]:
    """Newton's method, 4 steps: x_k = 1/2*(x_(k-1) + x/x_(k-1)), cut to 4 decimals toward
    minus infinity; x_0 is the integer part of the true root, written as an integer (`1`),
    or 0.1 when the root is below 1. The answer is x_4, the scratchpad's own last value,
    which is the true value cut to 4 decimals except in rare cases (11 of the 90,001 x of
    [1, 10], e.g. sqrt(3.516): x_4 = 1.8751, true 1.8750).

    Exact, in integers of 1e-4 units: x_k = floor((Y^2 + X * 10**4) / (2Y)), Y = x_(k-1) *
    10**4, X = x * 10**4. Where this differs from the study's floats: see the module's
    docstring.
    """
    x = problem.a
    root = math.isqrt(x) // 100  # the integer part of sqrt(x / 10**4) = sqrt(x) / 100
    value, previous = (root * SCALE, str(root)) if root >= 1 else (SCALE // 10, "0.1")
    lines = [f"x_0={previous}"]
    for k in range(1, 5):
        value = (value * value + x * SCALE) // (2 * value)
        step = units_text(value)
        lines.append(f"x_{k}: 1/2*({previous}+{units_text(x)}/{previous})={step}, x_{k}={step}")
        previous = step
    lines[-1] += " , END"
    return lines, previous


class Detailed(Format):
    """The detailed scratchpad: every step spelled out, the answer's digits spaced."""

    name = "detailed"
    # Each writer returns (step lines, answer): a digit list is written spaced out.
    writers: ClassVar[dict[str, Callable]] = {
        "+": _detailed_addition,
        "-": _detailed_subtraction,
        "*": _detailed_multiplication,
        "sin": _detailed_sine,
        "sqrt": _detailed_square_root,
    }

    def prompt(self, problem: Problem) -> str:
        return f"Input:\n{problem.question}\nTarget:\n"

    def render(self, problem: Problem) -> str:
        self.check(problem)
        lines, answer = self.writers[problem.op](problem)
        if not isinstance(answer, str):
            answer = " ".join(str(d) for d in answer)
        return self.prompt(problem) + "<scratch>\n" + "\n".join(lines) + f"\n</scratch>\n{answer}\n"

    def parse(self, text: str, problem: Problem | None = None) -> int | Decimal | None:
        line = _line_after(text, "</scratch>\n")
        return None if line is None else _to_number(line.replace(" ", ""), problem)

    def target(self, problem: Problem) -> int | Decimal:
        """What the sample's answer line states: the true answer, except for sine (and, where
        they differ, square root), whose answer is the scratchpad's own last value."""
        if not problem.is_function:
            return problem.answer
        return self.parse(self.completion(problem), problem)

    def is_complete(self, text: str) -> bool:
        return _line_after(text, "</scratch>\n") is not None


FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Plain(),
        Reverse(),
        ReverseAll(),
        ReversePadded(),
        PartialProducts(),
        PartialCarries(),
        Simplified(),
        Simplified("simplified_random_a", random_a=True),
        Simplified("simplified_random_c", random_c=True),
        Simplified("simplified_random_ac", random_a=True, random_c=True),
        Detailed(),
    )
}


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise ArithlabError(f"unknown format {name!r} (allowed: {', '.join(FORMATS)})")
    return FORMATS[name]
