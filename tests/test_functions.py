"""Sine and square root: docs/formats.md's strings byte for byte, exact answers, scratchpads
re-derived with Decimal, tolerance scoring, problem files, splits and `data show`."""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_FLOOR, Decimal, localcontext

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arithlab.api import to_problem
from arithlab.config import DataConfig
from arithlab.data import build_splits, read_problems, write_problems
from arithlab.errors import ArithlabError
from arithlab.evaluator import score
from arithlab.formats import FORMATS, get_format
from arithlab.tasks import Problem, number_text, parse_problem, units_text

SETTINGS = settings(max_examples=150, deadline=None)

SIN, SQRT = Problem.function("sin", "0.5"), Problem.function("sqrt", "2.5")

# ---------------------------------------------------------------------------------------
# The strings of docs/formats.md, copied as Python literals.

DETAILED_SIN = (
    "Input:\nsin(0.5)\nTarget:\n<scratch>\nx_0=0.5\nx_1: x_0 - 1/3! * (x^3) , x_1=0.4791\n"
    "x_2: x_1 + 1/5! * (x^5) , x_2=0.4793\nx_3: x_2 - 1/7! * (x^7) , x_3=0.4792\n"
    "x_4: x_3 + 1/9! * (x^9) , x_4=0.4792 , END\n</scratch>\n0.4792\n"
)
DETAILED_SQRT = (
    "Input:\nsqrt(2.5)\nTarget:\n<scratch>\nx_0=1\nx_1: 1/2*(1+2.5/1)=1.75, x_1=1.75\n"
    "x_2: 1/2*(1.75+2.5/1.75)=1.5892, x_2=1.5892\nx_3: 1/2*(1.5892+2.5/1.5892)=1.5811, x_3=1.5811\n"
    "x_4: 1/2*(1.5811+2.5/1.5811)=1.5811, x_4=1.5811 , END\n</scratch>\n1.5811\n"
)

SAMPLES = [
    ("plain", SIN, "sin(0.5)=0.4794\n", "sin(0.5)="),
    ("plain", SQRT, "sqrt(2.5)=1.5811\n", "sqrt(2.5)="),
    ("plain", Problem.function("sin", "-0.5"), "sin(-0.5)=-0.4795\n", "sin(-0.5)="),
    ("plain", Problem.function("sin", "0.9739"), "sin(0.9739)=0.827\n", "sin(0.9739)="),
    ("detailed", SIN, DETAILED_SIN, "Input:\nsin(0.5)\nTarget:\n"),
    ("detailed", SQRT, DETAILED_SQRT, "Input:\nsqrt(2.5)\nTarget:\n"),
]


@pytest.mark.parametrize(("name", "problem", "sample", "prompt"), SAMPLES)
def test_documented_sample_and_prompt_are_byte_exact(name, problem, sample, prompt):
    fmt = get_format(name)
    assert fmt.render(problem) == sample
    assert fmt.prompt(problem) == prompt
    answer = sample[len(prompt) :]
    assert fmt.is_complete(answer) and not fmt.is_complete(answer[:-1])
    assert fmt.parse(answer, problem) == fmt.target(problem)


def test_detailed_sine_is_scored_against_its_own_last_value():
    # The scratchpad's answer is x_4 = 0.4792, not the true 0.4794.
    assert SIN.answer == Decimal("0.4794")
    assert get_format("detailed").target(SIN) == Decimal("0.4792")
    assert get_format("plain").target(SIN) == Decimal("0.4794")
    assert get_format("detailed").target(SQRT) == SQRT.answer == Decimal("1.5811")


def test_problem_facts_of_the_documented_examples():
    assert (SIN.question, SIN.line, SIN.answer, SIN.carries) == ("sin(0.5)", "sin(0.5)=0.4794", Decimal("0.4794"), None)
    assert SIN == Problem("sin", 5000) and SIN.x == Decimal("0.5")
    assert Problem.function("sin", "-0.5").answer == Decimal("-0.4795")  # toward minus infinity
    assert SQRT.line == "sqrt(2.5)=1.5811"
    # Numbers print as Python prints the float: trailing zeros drop, an integer keeps `.0`.
    assert Problem.function("sqrt", "4").line == "sqrt(4.0)=2.0"
    assert Problem.function("sin", "0").line == "sin(0.0)=0.0"
    assert Problem.function("sqrt", "1.69").line == "sqrt(1.69)=1.3"  # a perfect square, exactly
    # digits: the decimals x is written with.
    assert [Problem.function("sin", x).digits for x in ("0.5", "0.25", "-0.125", "0.9739", "1")] == [1, 2, 3, 4, 1]


def test_detailed_square_root_below_one_starts_at_a_tenth():
    sample = get_format("detailed").render(Problem.function("sqrt", "0.25"))
    assert "<scratch>\nx_0=0.1\nx_1: 1/2*(0.1+0.25/0.1)=1.3, x_1=1.3\n" in sample
    # Four steps from 0.1 do not reach 0.5; the answer is the scratchpad's own x_4.
    assert sample.endswith("x_4: 1/2*(0.5405+0.25/0.5405)=0.5015, x_4=0.5015 , END\n</scratch>\n0.5015\n")


@pytest.mark.parametrize("name", ["reverse", "simplified", "simplified_random_a", "simplified_random_ac"])
@pytest.mark.parametrize("problem", [SIN, SQRT])
def test_reverse_and_simplified_refuse_sine_and_square_root(name, problem):
    fmt = get_format(name)
    assert not fmt.supports(problem)
    with pytest.raises(ArithlabError, match=rf"{name}.*{re.escape(problem.question)}"):
        fmt.render(problem)


# ---------------------------------------------------------------------------------------
# Exact answers, re-derived with Decimal.


def _floor4(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)


def _decimal_sin(x: Decimal) -> Decimal:
    """sin(x) by its Taylor series to 100 digits."""
    with localcontext() as ctx:
        ctx.prec = 100
        term, total, n = x, x, 1
        while abs(term) > Decimal("1e-95"):
            n += 2
            term = -term * x * x / ((n - 1) * n)
            total += term
        return total


def _sines() -> st.SearchStrategy[Problem]:
    """sin problems: x over the sampling range [-pi/2, pi/2] and the whole domain, |x| <= 10."""
    units = st.one_of(st.integers(-15708, 15707), st.integers(-100000, 100000), st.integers(-600, 600))
    return units.map(lambda u: Problem("sin", u))


def _square_roots() -> st.SearchStrategy[Problem]:
    """sqrt problems: x over the sampling range [1, 10], below 1, and up to 10**8; perfect squares."""
    squares = st.integers(0, 10**6).map(lambda k: k * k)
    units = st.one_of(st.integers(10000, 100000), st.integers(0, 10000), st.integers(0, 10**12), squares)
    return units.map(lambda u: Problem("sqrt", u))


@SETTINGS
@given(_sines())
@example(Problem("sin", 0))
@example(Problem("sin", 6000))
@example(Problem("sin", -536))
@example(Problem("sin", 100000))
def test_sine_answer_is_the_true_value_cut_toward_minus_infinity(problem):
    assert problem.answer == _floor4(_decimal_sin(problem.x))


@SETTINGS
@given(_square_roots())
@example(Problem("sqrt", 12544))  # 1.2544 = 1.12^2: floats give 1.1199
@example(Problem("sqrt", 0))
@example(Problem("sqrt", 10**12))
def test_square_root_answer_is_the_true_value_cut_toward_minus_infinity(problem):
    with localcontext() as ctx:
        ctx.prec = 100
        assert problem.answer == _floor4(problem.x.sqrt())


@SETTINGS
@given(st.one_of(st.integers(-(10**12), 10**12), st.integers(-(10**5), 10**5)))
@example(0)
@example(1)
@example(-1)
@example(40000)
@example(10**12)
def test_numbers_print_as_python_prints_their_float(units):
    text = units_text(units)
    assert text == repr(float(text))
    assert Decimal(text) * 10**4 == units


# ---------------------------------------------------------------------------------------
# Every problem renders and reads back; the scratchpads re-derive.


def _functions() -> st.SearchStrategy[Problem]:
    return st.one_of(_sines(), _square_roots())


@SETTINGS
@given(_functions(), st.text(max_size=10))
@example(SIN, "")
@example(SQRT, "\nsqrt(2.5)=1.5811\n")
def test_every_format_reads_back_its_own_target(problem, trailing):
    for fmt in FORMATS.values():
        if not fmt.supports(problem):
            continue
        sample, prompt = fmt.render(problem), fmt.prompt(problem)
        assert sample.startswith(prompt)
        answer = sample[len(prompt) :]
        target = fmt.target(problem)
        assert isinstance(target, Decimal)
        assert fmt.parse(answer, problem) == target
        assert fmt.parse(answer + trailing, problem) == target
        assert fmt.parse(answer[:-1], problem) is None and not fmt.is_complete(answer[:-1])
        if fmt.name == "plain":
            assert target == problem.answer and sample == f"{problem.line}\n"


_SINE_STEP = re.compile(r"^x_(\d): x_(\d) ([-+]) 1/(\d)! \* \(x\^(\d)\) , x_(\d)=(-?\d+\.\d+)( , END)?$")


@SETTINGS
@given(_sines())
@example(SIN)
@example(Problem("sin", 6000))  # x_1 = 0.6 - 0.036 = 0.564 exactly
@example(Problem("sin", -536))  # x_4 drops by a term too small for floats
@example(Problem("sin", 0))
def test_detailed_sine_scratchpad_rederives_every_partial_sum(problem):
    sample = get_format("detailed").render(problem)
    prompt = f"Input:\n{problem.question}\nTarget:\n<scratch>\n"
    assert sample.startswith(prompt)
    body, sep, tail = sample[len(prompt) :].partition("\n</scratch>\n")
    assert sep
    first, *steps = body.split("\n")
    assert first == f"x_0={units_text(problem.a)}"
    assert len(steps) == 4
    x, value = problem.x, problem.x
    for k, (step, n) in enumerate(zip(steps, (3, 5, 7, 9)), start=1):
        match = _SINE_STEP.match(step)
        assert match, step
        assert (int(match[1]), int(match[2]), int(match[4]), int(match[5]), int(match[6])) == (k, k - 1, n, n, k)
        assert match[3] == ("-" if k % 2 else "+")
        assert bool(match[8]) == (k == 4)
        with localcontext() as ctx:
            ctx.prec = 100
            term = x**n / math.factorial(n)
            value = _floor4(value - term if k % 2 else value + term)
        assert match[7] == number_text(value)
    assert tail == f"{number_text(value)}\n"
    assert get_format("detailed").target(problem) == value


_NEWTON_STEP = re.compile(r"^x_(\d): 1/2\*\(([\d.]+)\+([\d.]+)/([\d.]+)\)=([\d.]+), x_(\d)=([\d.]+)( , END)?$")


@SETTINGS
@given(_square_roots())
@example(SQRT)
@example(Problem("sqrt", 0))
@example(Problem("sqrt", 2500))
@example(Problem("sqrt", 35160))  # x_4 = 1.8751, one above the true 1.875
@example(Problem("sqrt", 10**12))
def test_detailed_square_root_scratchpad_rederives_every_newton_step(problem):
    sample = get_format("detailed").render(problem)
    prompt = f"Input:\n{problem.question}\nTarget:\n<scratch>\n"
    assert sample.startswith(prompt)
    body, sep, tail = sample[len(prompt) :].partition("\n</scratch>\n")
    assert sep
    first, *steps = body.split("\n")
    with localcontext() as ctx:
        ctx.prec = 100
        root = int(problem.x.sqrt().to_integral_value(rounding=ROUND_FLOOR))
    start = str(root) if root >= 1 else "0.1"  # the integer part, or 0.1 below 1
    assert first == f"x_0={start}"
    assert len(steps) == 4
    previous, value = start, Decimal(start)
    for k, step in enumerate(steps, start=1):
        match = _NEWTON_STEP.match(step)
        assert match, step
        assert (int(match[1]), int(match[6])) == (k, k)
        assert (match[2], match[3], match[4]) == (previous, units_text(problem.a), previous)
        assert bool(match[8]) == (k == 4)
        with localcontext() as ctx:
            ctx.prec = 100
            value = _floor4((value + problem.x / value) / 2)
        assert match[5] == match[7] == number_text(value)
        previous = match[7]
    assert tail == f"{number_text(value)}\n"
    assert get_format("detailed").target(problem) == value


# ---------------------------------------------------------------------------------------
# Parsing answers and problems.


def test_parsers_read_decimals_only_for_function_problems():
    plain, detailed = get_format("plain"), get_format("detailed")
    assert plain.parse("0.4794\n", SIN) == Decimal("0.4794")
    assert plain.parse("2\n", SQRT) == 2
    assert plain.parse("-0.4795\n", SIN) == Decimal("-0.4795")
    assert detailed.parse("</scratch>\n0.4 7 9 2\n", SIN) == Decimal("0.4792")
    for garbage in ("abc\n", "0.47.94\n", ".5\n", "5.\n", "0,5\n", "1e-3\n", "\n", "0.4794"):
        assert plain.parse(garbage, SIN) is None, garbage
    # Integer problems keep reading integers only: 495.0 is no answer to 128+367.
    assert plain.parse("495.0\n", Problem("+", 128, 367)) is None
    assert plain.parse("495.0\n") is None
    assert type(plain.parse("495\n")) is int


@pytest.mark.parametrize(
    ("text", "problem", "stated"),
    [
        ("sin(0.5)=0.4794", SIN, Decimal("0.4794")),
        ("sin(0.5)=", SIN, None),
        ("sin(0.5)", SIN, None),
        ("  sqrt(2.5)=1.5811 ", SQRT, Decimal("1.5811")),
        ("sin(-0.5)=-0.4795", Problem("sin", -5000), Decimal("-0.4795")),
        ("sqrt(4)=2", Problem("sqrt", 40000), Decimal(2)),
        ("sin(0.50000)", SIN, None),
    ],
)
def test_parse_problem_reads_function_problems(text, problem, stated):
    assert parse_problem(text) == (problem, stated)


@pytest.mark.parametrize(
    "text", ["sin(0.00001)", "sqrt(-1)", "sin(10.0001)", "tan(0.5)", "sin 0.5", "sin(.5)", "sin(1e3)", "sin(0.5)=x"]
)
def test_parse_problem_rejects_what_is_not_a_function_problem(text):
    with pytest.raises(ValueError):
        parse_problem(text)


def test_a_wrong_stated_answer_is_an_error_with_the_true_value():
    with pytest.raises(ArithlabError, match=r"sin\(0\.5\) is 0\.4794"):
        to_problem("sin(0.5)=0.4795")
    assert to_problem("sin(0.5)=0.47940") == SIN  # the same number


# ---------------------------------------------------------------------------------------
# Scoring.


def _score(fmt_name, problems, outputs):
    summary, rows = score(get_format(fmt_name), problems, outputs)
    json.dumps(rows)  # predictions.jsonl must be able to hold them
    return summary, rows


def test_tolerance_scoring_of_hand_made_outputs():
    outputs = ["0.4794\n", "0.4797\n", "0.4894\n", "garbage\n", "0.4834\n", "0.4799\n"]
    summary, rows = _score("plain", [SIN] * len(outputs), outputs)
    # Right; off by 3e-4; off by 1e-2; unparseable; off by 4e-3; off by exactly 5e-4.
    assert [r["correct"] for r in rows] == [True, False, False, False, False, False]
    assert [r["within_5e-4"] for r in rows] == [True, True, False, False, False, True]
    assert [r["within_5e-3"] for r in rows] == [True, True, False, False, True, True]
    assert summary["accuracy"] == 1 / 6
    assert summary["within_5e-4"] == 3 / 6 and summary["within_5e-3"] == 4 / 6
    assert list(summary)[:3] == ["accuracy", "within_5e-4", "within_5e-3"]
    assert summary["by_carries"] == {}
    assert summary["by_digits"] == {"1": {"accuracy": 1 / 6, "n": 6}}
    assert rows[0] == {
        "prompt": "sin(0.5)=",
        "output": "0.4794\n",
        "parsed": "0.4794",
        "answer": "0.4794",
        "correct": True,
        "target": "0.4794",
        "within_5e-4": True,
        "within_5e-3": True,
    }
    assert rows[3]["parsed"] is None


def test_detailed_sine_exact_match_is_its_own_value_and_tolerance_the_true_one():
    head = DETAILED_SIN[len("Input:\nsin(0.5)\nTarget:\n") : DETAILED_SIN.index("</scratch>")]
    outputs = [head + "</scratch>\n0.4792\n", head + "</scratch>\n0.4794\n", head + "</scratch>\n0.4892\n"]
    summary, rows = _score("detailed", [SIN] * 3, outputs)
    assert [r["correct"] for r in rows] == [True, False, False]
    assert [r["within_5e-4"] for r in rows] == [True, True, False]
    assert rows[0]["target"] == "0.4792" and rows[0]["answer"] == "0.4794"
    assert summary["within_5e-3"] == 2 / 3


def test_integer_problems_keep_their_summary_and_rows():
    problems = [Problem("+", 128, 367), Problem("+", 2, 5)]
    summary, rows = _score("plain", problems, ["495\n", "8\n"])
    assert list(summary) == ["accuracy", "n", "correct", "by_digits", "by_carries", "by_lengths", "by_place"]
    # 495 right; 2+5 answered 8: its one place wrong.
    assert summary["by_place"] == {
        "1": {"accuracy": 0.5, "n": 2},
        "2": {"accuracy": 1.0, "n": 1},
        "3": {"accuracy": 1.0, "n": 1},
    }
    assert summary["by_lengths"] == {"1x1": {"accuracy": 0.0, "n": 1}, "3x3": {"accuracy": 1.0, "n": 1}}
    assert rows[0] == {"prompt": "128+367=", "output": "495\n", "parsed": 495, "answer": 495, "correct": True}
    assert set(rows[1]) == {"prompt", "output", "parsed", "answer", "correct"}


# ---------------------------------------------------------------------------------------
# Problem files, splits, `data show`.


def test_problem_file_lines_round_trip(tmp_path):
    problems = [SIN, SQRT, Problem("sin", -5000), Problem("sin", 9739), Problem("sqrt", 40000), Problem("+", 1, 2)]
    path = tmp_path / "problems.txt"
    write_problems(path, problems)
    assert path.read_text() == (
        "sin(0.5)=0.4794\nsqrt(2.5)=1.5811\nsin(-0.5)=-0.4795\nsin(0.9739)=0.827\nsqrt(4.0)=2.0\n1+2=3\n"
    )
    assert read_problems(path) == problems


def test_problem_file_with_a_wrong_function_answer_names_file_line_and_true_value(tmp_path):
    path = tmp_path / "problems.txt"
    path.write_text("sin(0.5)=0.4794\nsqrt(2.5)=\nsin(0.5)=0.4792\n")
    with pytest.raises(ArithlabError) as info:
        read_problems(path)
    message = str(info.value)
    assert f"{path}:3" in message and "sin(0.5)=0.4792" in message and "0.4794" in message


def test_problem_file_with_a_bad_function_line_names_file_and_line(tmp_path):
    path = tmp_path / "problems.txt"
    path.write_text("sin(0.5)\nsqrt(-2)\n")
    with pytest.raises(ArithlabError, match=rf"{re.escape(str(path))}:2: .*sqrt\(-2\)"):
        read_problems(path)


@pytest.mark.parametrize(("op", "low", "high"), [("sin", -15708, 15707), ("sqrt", 10000, 100000)])
def test_build_splits_draws_distinct_disjoint_seeded_function_problems(op, low, high):
    cfg = DataConfig(operation=op, format="detailed", sampling="uniform", n_train=3000, n_val=100, n_test=1000)
    splits = build_splits(cfg)
    train, val, test = set(splits.train), set(splits.validation), set(splits.test)
    assert (len(train), len(val), len(test)) == (3000, 100, 1000)
    assert not (train & val or train & test or val & test)
    everything = splits.train + splits.validation + splits.test
    assert all(p.op == op and p.b == 0 and low <= p.a <= high for p in everything)
    # Uniform over the interval: every tenth of it is hit, in roughly equal shares.
    tenths = [(p.a - low) * 10 // (high - low + 1) for p in splits.train]
    assert all(250 <= tenths.count(t) <= 350 for t in range(10))
    assert build_splits(cfg).train == splits.train
    assert build_splits(DataConfig(**{**cfg.__dict__, "seed": 1})).train != splits.train


def test_balanced_sampling_of_a_function_is_a_clear_error():
    with pytest.raises(ArithlabError, match="balanced.*'sin'.*uniform"):
        build_splits(DataConfig(operation="sin", format="plain", sampling="balanced", n_train=10))


def test_data_show_prints_the_detailed_sine(capsys):
    from arithlab.cli import main

    assert main(["data", "show", "--format", "detailed", "sin(0.5)"]) == 0
    assert capsys.readouterr() == (DETAILED_SIN, "")
    assert main(["data", "show", "--format", "plain", "sqrt(2.5)"]) == 0
    assert capsys.readouterr() == ("sqrt(2.5)=1.5811\n", "")


def test_an_excluded_integer_matches_a_function_input_of_that_value():
    from arithlab.data import Splits, describe

    train = [Problem.function("sqrt", "2"), Problem.function("sqrt", "2.5"), Problem.function("sin", "-1")]
    assert train[0].operands == (Decimal("2.0"),)
    info = describe(Splits(train, [], []), "plain", [2, -1])
    assert info["train_uses_excluded"] == 2
    assert info["train_by_carries"] == {"None": 3}
