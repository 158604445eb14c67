"""Samplers: the balanced sets of docs/formats.md (quotas, nesting, exclusions) and the exact
carry counting they rest on, checked against brute-force enumeration."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from arithlab import sampling
from arithlab.errors import ArithlabError
from arithlab.tasks import Problem

SETTINGS = settings(max_examples=200, deadline=None)


def _carries(problems) -> Counter:
    return Counter(p.carries for p in problems)


def _quota(n: int, counts: int) -> dict[int, int]:
    """floor(n / counts) each, the remainder one each to the lowest carry counts."""
    return {c: n // counts + (1 if c < n % counts else 0) for c in range(counts)}


def _numbers_of_length(length: int) -> range:
    return range(10) if length == 1 else range(10 ** (length - 1), 10**length)


# ---------------------------------------------------------------------------------------
# The reference 3-digit addition set.


@pytest.fixture(scope="module")
def ten_thousand() -> list[Problem]:
    return sampling.balanced("+", 3, 10000, 0)


def test_balanced_10k_has_exactly_2500_problems_per_carry_count(ten_thousand):
    assert len(ten_thousand) == 10000
    assert _carries(ten_thousand) == {0: 2500, 1: 2500, 2: 2500, 3: 2500}


def test_balanced_10k_holds_all_100_one_digit_pairs(ten_thousand):
    one_digit = {(p.a, p.b) for p in ten_thousand if p.digits == 1}
    assert one_digit == {(a, b) for a in range(10) for b in range(10)}
    assert all(p.op == "+" for p in ten_thousand)


def test_balanced_10k_has_900_problems_with_two_digit_longer_operand(ten_thousand):
    assert Counter(p.digits for p in ten_thousand) == {1: 100, 2: 900, 3: 9000}
    assert all(0 <= p.a <= 999 and 0 <= p.b <= 999 for p in ten_thousand)


def test_balanced_10k_problems_are_distinct(ten_thousand):
    assert len(set(ten_thousand)) == 10000


def test_balanced_250_splits_the_remainder_to_the_lowest_carry_counts():
    assert _carries(sampling.balanced("+", 3, 250, 0)) == {0: 63, 1: 63, 2: 62, 3: 62}


@pytest.mark.parametrize("n", [301, 302, 303, 555, 1001, 1234, 2002, 2999])
def test_balanced_quotas_follow_floor_and_remainder_rule(n):
    problems = sampling.balanced("+", 3, n, 7)
    assert len(problems) == len(set(problems)) == n
    assert _carries(problems) == _quota(n, 4)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_balanced_is_deterministic_for_a_seed(seed):
    assert sampling.balanced("+", 3, 1000, seed) == sampling.balanced("+", 3, 1000, seed)


def test_balanced_sets_of_growing_size_are_nested():
    sizes = (250, 1000, 5000, 20000)
    sets = {n: set(sampling.balanced("+", 3, n, 3)) for n in sizes}
    for small, large in zip(sizes, sizes[1:]):
        assert len(sets[small]) == small
        assert sets[small] < sets[large], (small, large)
    # Each of them still exactly balanced.
    assert _carries(sets[20000]) == {c: 5000 for c in range(4)}
    assert _carries(sets[5000]) == {c: 1250 for c in range(4)}


def test_sets_of_at_most_100_are_seeded_subsets_of_the_one_digit_pairs():
    pairs = {Problem("+", a, b) for a in range(10) for b in range(10)}
    for n in (1, 21, 50, 100):
        problems = sampling.balanced("+", 3, n, 0)
        assert len(problems) == len(set(problems)) == n
        assert set(problems) <= pairs
    assert set(sampling.balanced("+", 3, 50, 0)) != set(sampling.balanced("+", 3, 50, 1))


def test_sets_of_at_most_100_are_nested_too():
    for small, large in ((21, 22), (20, 50), (50, 100)):
        assert set(sampling.balanced("+", 3, small, 0)) <= set(sampling.balanced("+", 3, large, 0)), (small, large)


def test_different_seed_gives_a_different_set():
    first, second = set(sampling.balanced("+", 3, 1000, 0)), set(sampling.balanced("+", 3, 1000, 1))
    assert first != second
    # Beyond the 100 one-digit pairs that every set shares, they differ substantially.
    assert len(first & second) < 300


# ---------------------------------------------------------------------------------------
# Excluded numbers.


def _check_excluded(problems, excluded, n):
    assert len(problems) == len(set(problems)) == n
    assert not any({p.a, p.b} & set(excluded) for p in problems)
    assert _carries(problems) == _quota(n, 4)


def test_excluded_number_is_never_an_operand():
    problems = sampling.balanced("+", 3, 10000, 0, excluded=[527])
    _check_excluded(problems, [527], 10000)
    # Without the exclusion, 527 shows up: the test above is not vacuous.
    assert any(527 in (p.a, p.b) for p in sampling.balanced("+", 3, 10000, 0))


def test_excluding_100_random_numbers_keeps_the_balance():
    excluded = random.Random(5).sample(range(1000), 100)
    _check_excluded(sampling.balanced("+", 3, 5000, 2, excluded=excluded), excluded, 5000)


def test_excluding_one_digit_numbers_drops_their_one_digit_pairs():
    problems = sampling.balanced("+", 3, 2000, 0, excluded=[3, 7])
    _check_excluded(problems, [3, 7], 2000)
    one_digit = {(p.a, p.b) for p in problems if p.digits == 1}
    assert one_digit == {(a, b) for a in range(10) for b in range(10) if a not in (3, 7) and b not in (3, 7)}


# ---------------------------------------------------------------------------------------
# n-digit addition.


@pytest.fixture(scope="module")
def ten_digit() -> list[Problem]:
    return sampling.balanced("+", 10, 2000, 0)


def test_ten_digit_balanced_carries_are_within_one_of_each_other(ten_digit):
    counts = _carries(ten_digit)
    assert set(counts) == set(range(11))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert sum(counts.values()) == 2000


def test_ten_digit_balanced_problems_are_distinct_and_at_most_ten_digits(ten_digit):
    assert len(set(ten_digit)) == 2000
    assert all(0 <= p.a < 10**10 and 0 <= p.b < 10**10 for p in ten_digit)
    assert {(p.a, p.b) for p in ten_digit if p.digits == 1} == {(a, b) for a in range(10) for b in range(10)}
    # Every width from 2 to 10 digits is represented, more of the longer ones.
    by_digits = Counter(p.digits for p in ten_digit)
    assert set(by_digits) == set(range(1, 11))
    assert by_digits[10] > by_digits[2]


def test_ten_digit_balanced_spreads_the_shorter_operand_and_the_order(ten_digit):
    long = [p for p in ten_digit if p.digits == 10]
    shorter = Counter(min(len(str(p.a)), len(str(p.b))) for p in long)
    assert len(shorter) >= 8  # not only equal lengths, as uniform operands would give
    assert any(p.a < p.b for p in long) and any(p.a > p.b for p in long)
    assert any(len(str(p.a)) < len(str(p.b)) for p in long) and any(len(str(p.a)) > len(str(p.b)) for p in long)


def test_carry_counts_of_sampled_problems_equal_the_recomputed_carries(ten_digit):
    for p in ten_digit:
        carry, total = 0, 0
        for i in range(p.digits):
            carry = int((p.a // 10**i) % 10 + (p.b // 10**i) % 10 + carry >= 10)
            total += carry
        assert p.carries == total, p


def test_balanced_refuses_multiplication_and_oversized_one_digit_sets():
    with pytest.raises(ArithlabError, match="uniform"):
        sampling.balanced("*", 2, 500, 0)
    with pytest.raises(ArithlabError, match="100"):
        sampling.balanced("+", 1, 101, 0)
    small = sampling.balanced("+", 1, 100, 0)
    assert set(small) == {Problem("+", a, b) for a in range(10) for b in range(10)}


def test_balanced_raises_when_too_few_problems_exist_outside_the_excluded_numbers():
    # 2-digit addition has 10,000 problems; excluding 0..49 leaves 2,500.
    with pytest.raises(ArithlabError, match="cannot draw"):
        sampling.balanced("+", 2, 3000, 0, excluded=range(50))


# ---------------------------------------------------------------------------------------
# Exact counting and drawing by carries.


@pytest.mark.parametrize("symbol", ["+", "-"])
@pytest.mark.parametrize("len_a", [1, 2, 3])
@pytest.mark.parametrize("len_b", [1, 2])
def test_count_problems_matches_brute_force_enumeration(symbol, len_a, len_b):
    brute = Counter(Problem(symbol, a, b).carries for a in _numbers_of_length(len_a) for b in _numbers_of_length(len_b))
    width = max(len_a, len_b)
    for carries in range(-1, width + 3):
        assert sampling.count_problems(symbol, len_a, len_b, carries) == brute.get(carries, 0), carries
    total = sum(sampling.count_problems(symbol, len_a, len_b, c) for c in range(width + 1))
    assert total == len(_numbers_of_length(len_a)) * len(_numbers_of_length(len_b))


@SETTINGS
@given(
    st.sampled_from(["+", "-"]),
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(0, 12),
    st.integers(0, 2**32),
)
def test_draw_with_carries_returns_the_requested_lengths_and_carries(symbol, len_a, len_b, carries, seed):
    assume(sampling.count_problems(symbol, len_a, len_b, carries) > 0)
    problem = sampling.draw_with_carries(symbol, len_a, len_b, carries, random.Random(seed))
    assert problem.op == symbol
    assert len(str(problem.a)) == len_a
    assert len(str(problem.b)) == len_b
    assert problem.carries == carries


def test_draw_with_carries_covers_its_cell_uniformly():
    # 2-digit + 1-digit with 2 carries: a = 9x, x + b >= 10: 45 problems.
    cell = {Problem("+", a, b) for a in range(10, 100) for b in range(10) if Problem("+", a, b).carries == 2}
    assert len(cell) == sampling.count_problems("+", 2, 1, 2) == 45
    rng = random.Random(0)
    counts = Counter(sampling.draw_with_carries("+", 2, 1, 2, rng) for _ in range(4500))
    assert set(counts) == cell
    assert min(counts.values()) > 50 and max(counts.values()) < 150  # expected 100 each


# ---------------------------------------------------------------------------------------
# Uniform sampling.


def test_take_distinct_from_uniform_is_distinct_avoids_and_is_seeded():
    avoid = set(sampling.take_distinct(sampling.uniform("+", 2, 99), 3000, set()))
    taken = sampling.take_distinct(sampling.uniform("+", 2, 0), 2000, avoid)
    assert len(taken) == len(set(taken)) == 2000
    assert not set(taken) & avoid
    assert all(0 <= p.a < 100 and 0 <= p.b < 100 for p in taken)
    assert taken == sampling.take_distinct(sampling.uniform("+", 2, 0), 2000, avoid)
    assert taken != sampling.take_distinct(sampling.uniform("+", 2, 1), 2000, avoid)


def test_take_distinct_leaves_out_excluded_numbers():
    taken = sampling.take_distinct(sampling.uniform("-", 3, 0), 1000, set(), excluded=[527, 0])
    assert len(set(taken)) == 1000
    assert not any({p.a, p.b} & {527, 0} for p in taken)
    assert all(p.op == "-" for p in taken)


def test_uniform_operands_cover_the_whole_range():
    stream = sampling.uniform("*", 2, 0)
    problems = [next(stream) for _ in range(5000)]
    assert {p.a for p in problems} == set(range(100))
    assert {p.b for p in problems} == set(range(100))


def test_take_distinct_raises_when_the_space_is_too_small():
    # One-digit problems: only 100 exist.
    with pytest.raises(ArithlabError, match="distinct"):
        sampling.take_distinct(sampling.uniform("+", 1, 0), 101, set())
