"""Operations: exact results, carries and digit counts of arithmetic problems.

A `Problem` is an operation and its operands. Everything else in arithlab (formats,
samplers, evaluation) asks a problem or its `Operation` for facts, and an operation is one
entry of `OPERATIONS`: its symbol, exact result, valid operands, how its problems are
written and parsed, and which formats can write it. The problem parser and every format's
list of operations are derived from that registry.

Two kinds of operation share these interfaces:
- binary operations (`+ - * // %`) on non-negative integers `a` and `b`, with integer
  answers, written `a+b`;
- functions of one exact 4-decimal number x (`sin`, `sqrt`), written `sin(x)`, whose answer
  is the true value cut to 4 decimals toward minus infinity, floor(v * 10**4) / 10**4,
  computed exactly (integer and rational arithmetic, never floats) and returned as a Decimal
  (docs/formats.md).

Numbers of the functions are printed as Python prints the study's floats: trailing zeros
drop, but an integer value keeps one (`0.5`, `0.479`, `2.0`); see `number_text`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from arithlab.errors import ArithlabError

# Functions take x as an integer count of 1e-4 units (0.5 is 5000). An integer keeps a
# Problem a plain record of integers: hashable, totally ordered and exact, so sets, sorting
# and the disjointness of splits work unchanged, samplers draw x as an integer, and no two
# spellings of one x exist (Decimal("0.5") and Decimal("0.5000") are equal but print apart).
SCALE = 10**4


@dataclass(frozen=True)
class Operation:
    """An arithmetic operation: binary on non-negative integers, digit by digit where it can
    be, or a function of one 4-decimal number (`arity` 1).

    `arity` also says how its problems are written and parsed: `a{symbol}b` (2) or
    `{symbol}(x)` (1)."""

    name: str
    symbol: str
    # Binary: (a, b) -> the exact result. Function: x in 1e-4 units -> floor(f(x) * 10**4),
    # the true value cut to 4 decimals, in the same units.
    compute: Callable[..., int]
    # The formats that can write its problems, by family (`simplified` covers its random
    # variants); a scratchpad format also needs a step writer for it (formats.py).
    formats: tuple[str, ...]
    # Per digit position, least significant first: (digit of a, digit of b, carry in) ->
    # carry out. None where the notion does not apply (multiplication, division, functions).
    carry_out: Callable[[int, int, int], int] | None = None
    arity: int = 2
    # Binary only: the least valid b (1 where b = 0 has no result); samplers draw none below.
    least_b: int = 0
    # Functions only: the inputs accepted, in 1e-4 units (inclusive), and the study's
    # sampling interval of x (x uniform on it, then cut to 4 decimals).
    domain: tuple[int, int] | None = None
    interval: tuple[Decimal, Decimal] | None = None


def _floor_sin(units: int) -> int:
    """floor(sin(x) * 10**4) for x = units / 10**4, exactly.

    Partial sums of the Taylor series, as fractions, until two consecutive ones bracket
    sin(x) and lie in the same 1e-4 cell. The bracket is valid once the terms decrease in
    size (x^2 < (n+1)(n+2) from the term x^n/n! on), since the series then alternates with
    shrinking terms. It always closes: sin of a nonzero rational is irrational, so sin(x)
    is never on a cell boundary.
    """
    if units == 0:
        return 0
    x = Fraction(units, SCALE)
    term, total, n = x, x, 1
    while True:
        n += 2
        term = -term * x * x / ((n - 1) * n)
        new_total = total + term
        if x * x < (n + 1) * (n + 2):
            low, high = sorted((total, new_total))
            if math.floor(low * SCALE) == math.floor(high * SCALE):
                return math.floor(low * SCALE)
        total = new_total


def _floor_sqrt(units: int) -> int:
    """floor(sqrt(x) * 10**4) for x = units / 10**4, exactly: sqrt(units * 10**4)."""
    return math.isqrt(units * SCALE)


# Formats every integer operation has: the answer as written, reversed, and (for length
# generalization) with the operands reversed too.
_WRITTEN = ("plain", "reverse", "reverse_all")

OPERATIONS: dict[str, Operation] = {
    op.symbol: op
    for op in (
        Operation(
            "add",
            "+",
            lambda a, b: a + b,
            (*_WRITTEN, "reverse_pad", "simplified", "detailed"),
            carry_out=lambda x, y, c: int(x + y + c >= 10),
        ),
        # Borrows of the study's subtraction scratchpad: a position borrows when its
        # digit difference, less the borrow in, is negative.
        Operation(
            "sub",
            "-",
            lambda a, b: a - b,
            (*_WRITTEN, "simplified", "detailed"),
            carry_out=lambda x, y, c: int(x - y - c < 0),
        ),
        Operation("mul", "*", lambda a, b: a * b, (*_WRITTEN, "partial_products", "partial_carries", "detailed")),
        Operation("floordiv", "//", lambda a, b: a // b, _WRITTEN, least_b=1),
        Operation("mod", "%", lambda a, b: a % b, _WRITTEN, least_b=1),
        # |x| <= 10: beyond it the 4-term Taylor scratchpad is meaningless and its terms
        # outgrow the digits a float prints exactly.
        Operation(
            "sin",
            "sin",
            _floor_sin,
            ("plain", "detailed"),
            arity=1,
            domain=(-10 * SCALE, 10 * SCALE),
            interval=(Decimal("-1.5707963267948966"), Decimal("1.5707963267948966")),  # -pi/2, pi/2
        ),
        # 0 <= x <= 10**8: every number of the Newton scratchpad stays within the 15
        # significant digits a float prints exactly.
        Operation(
            "sqrt",
            "sqrt",
            _floor_sqrt,
            ("plain", "detailed"),
            arity=1,
            domain=(0, 10**8 * SCALE),
            interval=(Decimal(1), Decimal(10)),
        ),
    )
}
OPERATION_NAMES = {op.name: op.symbol for op in OPERATIONS.values()}


def operation(name_or_symbol: str) -> Operation:
    """The operation called `add` or written `+` (either spelling)."""
    symbol = OPERATION_NAMES.get(name_or_symbol, name_or_symbol)
    if symbol not in OPERATIONS:
        allowed = ", ".join(sorted(OPERATION_NAMES))
        raise ArithlabError(f"unknown operation {name_or_symbol!r} (allowed: {allowed})")
    return OPERATIONS[symbol]


def digits_of(n: int) -> list[int]:
    """Decimal digits of a non-negative integer, most significant first."""
    return [int(ch) for ch in str(n)]


def count_carries(op: Operation, a: int, b: int) -> int | None:
    """Carries (borrows for subtraction) over the positions of the longer operand."""
    if op.carry_out is None:
        return None
    xs, ys = digits_of(a)[::-1], digits_of(b)[::-1]
    carry = total = 0
    for i in range(max(len(xs), len(ys))):
        x = xs[i] if i < len(xs) else 0
        y = ys[i] if i < len(ys) else 0
        carry = op.carry_out(x, y, carry)
        total += carry
    return total


def number_text(value: int | Decimal) -> str:
    """An answer as the study writes it: an integer as is; a decimal as Python prints the
    float of that value (`0.4794`, `0.479`, `2.0`, `-0.4795`), which for numbers of at most
    15 significant digits in [1e-4, 1e16), all that the functions' domains produce, is its
    exact digits with trailing zeros dropped and at least one decimal kept."""
    if not isinstance(value, Decimal):
        return str(value)
    text = format(value, "f")
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def units_text(units: int) -> str:
    """`number_text` of units / 10**4, e.g. 4790 -> `0.479`, 20000 -> `2.0`."""
    whole, fraction = divmod(abs(units), SCALE)
    return f"{'-' * (units < 0)}{whole}.{f'{fraction:04d}'.rstrip('0') or '0'}"


def from_units(units: int) -> Decimal:
    """units / 10**4 as an exact Decimal, written as the study prints it (str() of it is
    `units_text`: Decimal('0.479'), Decimal('2.0'))."""
    return Decimal(units_text(units))


@dataclass(frozen=True, order=True)
class Problem:
    """One problem: `a op b` on non-negative integers, or `op(x)` for a function, x being
    held in `a` as an integer count of 1e-4 units (`Problem("sin", 5000)` is sin(0.5)) and
    `b` unused (0)."""

    op: str
    a: int
    b: int = 0

    def __post_init__(self):
        if self.b < self.operation.least_b:  # e.g. a division by 0: a problem without an answer
            raise ValueError(f"{self.a}{self.op}{self.b} has no answer ({self.op} takes b >= {self.operation.least_b})")

    @classmethod
    def function(cls, symbol: str, x: str | Decimal | int) -> Problem:
        """`Problem.function("sin", "0.5")`: x given exactly (a string or a Decimal with at
        most 4 decimals, or an int). ValueError where the function does not take x."""
        op = OPERATIONS.get(symbol)
        if op is None or op.arity != 1:
            raise ValueError(f"{symbol!r} is not a function (functions: {', '.join(_symbols(1))})")
        units = Fraction(Decimal(x)) * SCALE  # exact, whatever the number of digits
        if units.denominator != 1:
            raise ValueError(f"{symbol}(x) takes x with at most 4 decimals")
        low, high = op.domain
        if not low <= units <= high:
            raise ValueError(f"{symbol}(x) takes {units_text(low)} <= x <= {units_text(high)}")
        return cls(symbol, int(units))

    @property
    def operation(self) -> Operation:
        return OPERATIONS[self.op]

    @property
    def is_function(self) -> bool:
        return self.operation.arity == 1

    @property
    def x(self) -> Decimal:
        """A function's input, exactly."""
        return from_units(self.a)

    @property
    def operands(self) -> tuple:
        """The numbers the problem uses (what `exclude` is matched against): (a, b), or
        (x,) for a function."""
        return (self.x,) if self.is_function else (self.a, self.b)

    @property
    def answer(self) -> int | Decimal:
        """The exact result; for a function the true value cut to 4 decimals toward minus
        infinity, as a Decimal."""
        if self.is_function:
            return from_units(self.operation.compute(self.a))
        return self.operation.compute(self.a, self.b)

    @property
    def answer_text(self) -> str:
        return number_text(self.answer)

    @property
    def question(self) -> str:
        """The study's text of the question: `128+367`, `sin(0.5)`."""
        if self.is_function:
            return f"{self.op}({units_text(self.a)})"
        return f"{self.a}{self.op}{self.b}"

    @property
    def line(self) -> str:
        """The study's problem-file line: `128+367=495`, `sin(0.5)=0.4794`."""
        return f"{self.question}={self.answer_text}"

    @property
    def digits(self) -> int:
        """Digit count of the longer operand (the key of `by_digits`); for a function, the
        decimals x is written with (1 to 4: `0.5` has 1, `0.9739` 4, `2.0` 1)."""
        if self.is_function:
            return len(units_text(self.a).partition(".")[2])
        return max(len(str(self.a)), len(str(self.b)))

    @property
    def carries(self) -> int | None:
        return count_carries(self.operation, self.a, self.b)


def _symbols(arity: int) -> list[str]:
    return [op.symbol for op in OPERATIONS.values() if op.arity == arity]


def _either(symbols: list[str]) -> str:
    """A regex group matching any of `symbols` exactly, the longest first (`**` before `*`)."""
    return "(" + "|".join(re.escape(s) for s in sorted(symbols, key=len, reverse=True)) + ")"


_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
# The two ways a problem is written, with every operation of the registry: `686+753=1439`
# (the answer may be left off) and `sin(0.5)=0.4794`.
_PROBLEM_RE = re.compile(rf"^([0-9]+){_either(_symbols(2))}([0-9]+)(?:=(-?[0-9]+)?)?$")
_FUNCTION_RE = re.compile(rf"^{_either(_symbols(1))}\(({_NUMBER})\)(?:=({_NUMBER})?)?$")


def parse_problem(text: str) -> tuple[Problem, int | Decimal | None]:
    """Read `686+753=1439`, `686+753=` or `686+753`, or `sin(0.5)=0.4794`, `sin(0.5)=` or
    `sin(0.5)`; returns the problem and the stated answer (a Decimal for a function).

    Raises ValueError (callers add the file and line) for anything else.
    """
    text = text.strip()
    match = _PROBLEM_RE.match(text)
    if match:
        a, symbol, b, stated = match.groups()
        problem = Problem(symbol, int(a), int(b))
        return problem, None if stated is None else int(stated)
    match = _FUNCTION_RE.match(text)
    if not match:
        raise ValueError("not a problem (expected e.g. 686+753=1439, 686+753= or 686+753; sin(0.5)=0.4794, sqrt(2.5)=)")
    symbol, x, stated = match.groups()
    return Problem.function(symbol, x), None if stated is None else Decimal(stated)


def read_problem(text: str) -> Problem:
    """`parse_problem`, and a stated answer must be the right one; ValueError otherwise."""
    problem, stated = parse_problem(text)
    if stated is not None and stated != problem.answer:
        raise ValueError(f"wrong answer, {problem.question} is {problem.answer_text}")
    return problem
