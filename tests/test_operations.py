"""The operation registry: one entry per operation, from which parsing, formats and samplers
take what they need; integer division `//` and modulo `%` are the proof that adding one
is one entry."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arithlab import sampling
from arithlab.config import DataConfig
from arithlab.data import build_splits
from arithlab.errors import ArithlabError
from arithlab.formats import FORMATS, get_format
from arithlab.tasks import OPERATIONS, Problem, operation, parse_problem, read_problem

SETTINGS = settings(max_examples=200, deadline=None)
DIVISIONS = ("//", "%")

# 1234 // 56 = 22, 1234 % 56 = 2: every format that writes integer answers.
DIVISION_SAMPLES = [
    ("plain", Problem("//", 1234, 56), "1234//56=22\n", "1234//56="),
    ("reverse", Problem("//", 1234, 56), "$1234//56=22$\n", "$1234//56="),
    ("reverse_all", Problem("//", 1234, 56), "$4321//65=22$\n", "$4321//65="),
    ("plain", Problem("%", 1234, 56), "1234%56=2\n", "1234%56="),
    ("reverse", Problem("%", 1234, 56), "$1234%56=2$\n", "$1234%56="),
    ("reverse_all", Problem("%", 1234, 56), "$4321%65=2$\n", "$4321%65="),
    # The answer reversed, a trailing 0 first: 170 // 1 = 170, 7 % 9 = 7, 3 // 7 = 0.
    ("reverse", Problem("//", 170, 1), "$170//1=071$\n", "$170//1="),
    ("reverse", Problem("%", 7, 9), "$7%9=7$\n", "$7%9="),
    ("plain", Problem("//", 3, 7), "3//7=0\n", "3//7="),
]


def _operand(digits: int = 12) -> st.SearchStrategy[int]:
    return st.integers(0, digits).flatmap(lambda d: st.integers(0, 10**d))


def _divisions() -> st.SearchStrategy[Problem]:
    return st.builds(Problem, st.sampled_from(DIVISIONS), _operand(), _operand().map(lambda b: b + 1))


@pytest.mark.parametrize(("name", "problem", "sample", "prompt"), DIVISION_SAMPLES)
def test_division_and_modulo_render_byte_exact_and_read_back(name, problem, sample, prompt):
    fmt = get_format(name)
    assert fmt.render(problem) == sample
    assert fmt.prompt(problem) == prompt
    assert fmt.parse(sample[len(prompt) :], problem) == problem.answer


def test_division_and_modulo_are_written_by_the_formats_their_entries_name():
    for symbol in DIVISIONS:
        writing = sorted(name for name, fmt in FORMATS.items() if fmt.supports(Problem(symbol, 7, 2)))
        assert writing == ["plain", "reverse", "reverse_all"]
    with pytest.raises(ArithlabError, match=r"format 'detailed' does not support '7//2'"):
        get_format("detailed").render(Problem("//", 7, 2))


def test_operations_are_known_by_name_and_symbol():
    assert operation("floordiv") is operation("//") and operation("mod") is operation("%")
    with pytest.raises(ArithlabError, match="unknown operation 'div'"):
        operation("div")


@pytest.mark.parametrize(("symbol", "text"), [("//", "7//0"), ("%", "7%0"), ("//", "7//0=0")])
def test_a_division_by_zero_is_no_problem(symbol, text):
    with pytest.raises(ValueError, match="has no answer"):
        parse_problem(text)
    with pytest.raises(ValueError, match="has no answer"):
        Problem(symbol, 7, 0)


@SETTINGS
@given(_divisions())
@example(Problem("//", 0, 1))
@example(Problem("%", 10**12, 10**12 + 1))
@example(Problem("//", 10**12, 1))
def test_every_format_of_division_and_modulo_round_trips(problem):
    assert read_problem(problem.line) == problem
    assert parse_problem(problem.question) == (problem, None)
    assert problem.answer == (problem.a // problem.b if problem.op == "//" else problem.a % problem.b)
    for fmt in FORMATS.values():
        if fmt.supports(problem):
            prompt = fmt.prompt(problem)
            assert fmt.parse(fmt.render(problem)[len(prompt) :], problem) == problem.answer, fmt.name


@SETTINGS
@given(st.sampled_from(DIVISIONS), st.integers(1, 4), st.integers(0, 10**6))
def test_samplers_never_draw_a_zero_divisor(symbol, digits, seed):
    drawn = sampling.take_distinct(sampling.uniform(symbol, digits, seed), 50, set(), partial=True)
    drawn += sampling.take_distinct(sampling.of_lengths(symbol, [1], [1, digits], seed), 50, set(), partial=True)
    assert drawn and all(p.b >= 1 for p in drawn)


@pytest.mark.parametrize("name", ["floordiv", "mod"])
def test_division_splits_hold_no_zero_divisor_and_refuse_balanced_sampling(name):
    splits = build_splits(DataConfig(operation=name, digits=1, sampling="uniform", n_train=60, n_val=5, n_test=10))
    problems = [*splits.train, *splits.validation, *splits.test]
    assert len(set(problems)) == 75 and min(p.b for p in problems) == 1
    with pytest.raises(ArithlabError, match="balanced sampling needs carries"):
        build_splits(DataConfig(operation=name, n_train=200))


def test_the_registry_names_only_formats_that_exist_and_scratchpads_have_a_writer_for_each():
    families = {fmt.family or fmt.name for fmt in FORMATS.values()}
    for op in OPERATIONS.values():
        assert set(op.formats) <= families, op.name
    for fmt in FORMATS.values():
        writers = getattr(fmt, "writers", None)
        if writers is not None:
            assert set(writers) == set(fmt.operations), fmt.name
