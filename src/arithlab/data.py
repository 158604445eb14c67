"""Datasets: the training, validation and test problems of a run, and problem files.

Problem files hold one problem a line in the study's text form (`686+753=1439`,
`sin(0.5)=0.4794`: a function's answer is its true value cut to 4 decimals; the answer may
be left off). Generated splits are disjoint by construction: the training set
is drawn first, then the test and validation sets from their own seeded streams, skipping
every problem already taken.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from arithlab import sampling
from arithlab.config import DataConfig
from arithlab.errors import ArithlabError
from arithlab.formats import get_format
from arithlab.tasks import Problem, operation, read_problem

# Distinct seeds for the streams of each split, so that they never coincide.
_TEST_STREAM, _VAL_STREAM = 1_000_003, 2_000_003


@dataclass
class Splits:
    train: list[Problem]
    validation: list[Problem]
    test: list[Problem]


def read_problems(path: Path) -> list[Problem]:
    """Problems of a file; a line that is not a problem, or states a wrong answer, is an
    error naming the file, the line number and the line."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ArithlabError(f"{path}: cannot read problem file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ArithlabError(f"{path}: not a text file") from None
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            problems.append(read_problem(line))
        except ValueError as err:
            raise ArithlabError(f"{path}:{number}: {err}: {line!r}") from None
    if not problems:
        raise ArithlabError(f"{path}: no problems in file")
    return problems


def write_problems(path: Path, problems: list[Problem]) -> None:
    Path(path).write_text("".join(f"{p.line}\n" for p in problems))


def _draw(symbol: str, how: str, digits: int, n: int, seed: int, avoid: set[Problem], excluded=()) -> list[Problem]:
    if how == "balanced":
        # Draw a few extra so that dropping the problems to avoid still leaves n.
        pool = sampling.balanced(symbol, digits, n + len(avoid), seed, excluded)
        return [p for p in pool if p not in avoid][:n]
    return sampling.take_distinct(sampling.uniform(symbol, digits, seed), n, avoid, excluded)


def _shares(cfg: DataConfig, count: int) -> list[float]:
    if not cfg.shares:
        return [1 / count] * count
    if len(cfg.shares) != count or any(share < 0 for share in cfg.shares) or not sum(cfg.shares):
        raise ArithlabError(
            f"config key data.shares: {cfg.shares} must give one non-negative share per operation ({count})"
        )
    return [share / sum(cfg.shares) for share in cfg.shares]


def _check_lengths(key: str, lengths: list[int]) -> None:
    if any(length < 1 for length in lengths):
        raise ArithlabError(f"config key {key}: {lengths} must be lengths of at least 1 digit")


def _by_lengths(cfg: DataConfig, symbols: list[str]) -> Splits:
    """Training and validation operands of the lengths `cfg.lengths`; a test with every
    pair of `cfg.test_lengths` (default: the training lengths) in equal numbers, short of
    that only in cells with fewer new problems (1 digit by 1 digit has 100 in all)."""
    _check_lengths("data.lengths", cfg.lengths)
    _check_lengths("data.test_lengths", cfg.test_lengths)
    sizes = [round(cfg.n_train * share) for share in _shares(cfg, len(symbols))]
    train = [
        problem
        for symbol, size in zip(symbols, sizes)
        for problem in sampling.take_distinct(
            sampling.of_lengths(symbol, cfg.lengths, cfg.lengths, cfg.seed), size, set(), cfg.exclude
        )
    ]
    used = set(train)
    test_lengths = cfg.test_lengths or cfg.lengths
    cells = [(a, b) for a in test_lengths for b in test_lengths]
    per_cell = -(-cfg.n_test // len(cells))
    test = []
    for symbol in symbols:
        for a, b in cells:
            stream = sampling.of_lengths(symbol, [a], [b], cfg.seed + _TEST_STREAM)
            test += sampling.take_distinct(stream, per_cell, used, partial=True)
    used |= set(test)
    validation = [
        problem
        for symbol in symbols
        for problem in sampling.take_distinct(
            sampling.of_lengths(symbol, cfg.lengths, cfg.lengths, cfg.seed + _VAL_STREAM), cfg.n_val, used, partial=True
        )
    ]
    return Splits(train, validation, test)


def build_splits(cfg: DataConfig) -> Splits:
    symbols = [operation(name).symbol for name in (cfg.operations or [cfg.operation])]
    if cfg.lengths and (cfg.train_file or cfg.test_file):
        raise ArithlabError("config keys data.lengths and data.train_file/test_file: give one or the other")
    splits = _by_lengths(cfg, symbols) if cfg.lengths else _by_digits(cfg, symbols)
    fmt = get_format(cfg.format)
    for problem in (*splits.train, *splits.test):
        fmt.check(problem)
    return splits


def _by_digits(cfg: DataConfig, symbols: list[str]) -> Splits:
    """Operands of 1..`digits` digits (balanced or uniform), or the problem files."""
    if cfg.train_file:
        train = read_problems(Path(cfg.train_file))
    else:
        sizes = [round(cfg.n_train * share) for share in _shares(cfg, len(symbols))]
        train = [
            problem
            for symbol, size in zip(symbols, sizes)
            for problem in _draw(symbol, cfg.sampling, cfg.digits, size, cfg.seed, set(), cfg.exclude)
        ]
    used = set(train)
    test_digits = cfg.test_digits or cfg.digits
    if cfg.test_file:
        test = read_problems(Path(cfg.test_file))
        shared = used & set(test)
        if shared:
            example = min(shared).question
            raise ArithlabError(
                f"{cfg.test_file}: {len(shared)} test problems are also in the training set (e.g. {example})"
            )
    else:
        test = [
            problem
            for symbol in symbols
            for problem in _draw(symbol, cfg.test_sampling, test_digits, cfg.n_test, cfg.seed + _TEST_STREAM, used)
        ]
    used |= set(test)
    validation = [
        problem
        for symbol in symbols
        for problem in _draw(symbol, cfg.test_sampling, test_digits, cfg.n_val, cfg.seed + _VAL_STREAM, used)
    ]
    return Splits(train, validation, test)


def _histogram(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: (kv[0] is None, kv[0]))}


def describe(splits: Splits, fmt_name: str, excluded: list[int]) -> dict:
    """data.json: sizes, overlaps between splits (0 by construction), histograms."""
    fmt = get_format(fmt_name)
    train, val, test = set(splits.train), set(splits.validation), set(splits.test)
    samples = [fmt.render(p) for p in splits.train]
    excluded_set = set(excluded)
    return {
        "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "distinct_train": len(train),
        "overlap": {
            "train_test": len(train & test),
            "train_validation": len(train & val),
            "validation_test": len(val & test),
        },
        "excluded_numbers": sorted(excluded_set),
        "train_uses_excluded": sum(1 for p in splits.train if excluded_set.intersection(p.operands)),
        "train_by_operation": _histogram(p.operation.name for p in splits.train),
        "train_by_carries": _histogram(p.carries for p in splits.train),
        "train_by_digits": _histogram(p.digits for p in splits.train),
        "test_by_carries": _histogram(p.carries for p in splits.test),
        "test_by_digits": _histogram(p.digits for p in splits.test),
        "mean_sample_chars": sum(map(len, samples)) / max(len(samples), 1),
    }
