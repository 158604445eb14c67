"""Operations: exact results, carries and digit counts of arithmetic problems.

A `Problem` is an operation and its non-negative integer operands. Everything else in
arithlab (formats, samplers, evaluation) asks a problem or its `Operation` for facts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from arithlab.errors import ArithlabError


@dataclass(frozen=True)
class Operation:
    """An arithmetic operation on non-negative integers, digit by digit where it can be."""

    name: str
    symbol: str
    compute: Callable[[int, int], int]
    # Per digit position, least significant first: (digit of a, digit of b, carry in) ->
    # carry out. None where the notion does not apply (multiplication).
    carry_out: Callable[[int, int, int], int] | None = None


OPERATIONS: dict[str, Operation] = {
    op.symbol: op
    for op in (
        Operation("add", "+", lambda a, b: a + b, lambda x, y, c: int(x + y + c >= 10)),
        # Borrows of the study's subtraction scratchpad: a position borrows when its
        # digit difference, less the borrow in, is negative.
        Operation("sub", "-", lambda a, b: a - b, lambda x, y, c: int(x - y - c < 0)),
        Operation("mul", "*", lambda a, b: a * b),
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


@dataclass(frozen=True, order=True)
class Problem:
    """One arithmetic problem: `a op b` on non-negative integers."""

    op: str
    a: int
    b: int

    @property
    def operation(self) -> Operation:
        return OPERATIONS[self.op]

    @property
    def answer(self) -> int:
        return self.operation.compute(self.a, self.b)

    @property
    def question(self) -> str:
        """The study's text of the question: `128+367`."""
        return f"{self.a}{self.op}{self.b}"

    @property
    def line(self) -> str:
        """The study's problem-file line: `128+367=495`."""
        return f"{self.question}={self.answer}"

    @property
    def digits(self) -> int:
        """Digit count of the longer operand (the key of `by_digits`)."""
        return max(len(str(self.a)), len(str(self.b)))

    @property
    def carries(self) -> int | None:
        return count_carries(self.operation, self.a, self.b)


_PROBLEM_RE = re.compile(r"^([0-9]+)([+\-*])([0-9]+)(?:=(-?[0-9]+)?)?$")


def parse_problem(text: str) -> tuple[Problem, int | None]:
    """Read `686+753=1439`, `686+753=` or `686+753`; returns the problem and the stated answer.

    Raises ValueError (callers add the file and line) for anything else.
    """
    match = _PROBLEM_RE.match(text.strip())
    if not match:
        raise ValueError("not a problem (expected e.g. 686+753=1439, 686+753= or 686+753)")
    a, symbol, b, stated = match.groups()
    problem = Problem(symbol, int(a), int(b))
    return problem, None if stated is None else int(stated)
