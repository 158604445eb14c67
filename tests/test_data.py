"""Datasets: disjoint generated splits, exclusions, and problem files with their errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from arithlab.config import DataConfig, load_config
from arithlab.data import build_splits, describe, length_test, read_problems, write_problems
from arithlab.errors import ArithlabError
from arithlab.evaluator import operand_lengths
from arithlab.tasks import Problem

SMALL = {"n_train": 2000, "n_val": 200, "n_test": 2000}


@pytest.fixture(scope="module")
def splits():
    return build_splits(DataConfig(**SMALL))


@pytest.fixture(scope="module")
def excluded_splits():
    # Data seed 1: its uniform test and validation sets happen to hold 527 four times.
    return build_splits(DataConfig(**SMALL, exclude=[527], seed=1))


# ---------------------------------------------------------------------------------------
# Generated splits.


def test_splits_have_the_requested_sizes_of_distinct_problems(splits):
    for problems, n in ((splits.train, 2000), (splits.validation, 200), (splits.test, 2000)):
        assert len(problems) == len(set(problems)) == n
        assert all(p.op == "+" and 0 <= p.a <= 999 and 0 <= p.b <= 999 for p in problems)


def test_train_validation_and_test_are_pairwise_disjoint(splits):
    train, val, test = set(splits.train), set(splits.validation), set(splits.test)
    assert not train & val
    assert not train & test
    assert not val & test


def test_describe_reports_zero_overlap_and_balanced_training_carries(splits):
    info = describe(splits, "reverse", [])
    assert info["overlap"] == {"train_test": 0, "train_validation": 0, "validation_test": 0}
    assert info["sizes"] == {"train": 2000, "validation": 200, "test": 2000}
    assert info["distinct_train"] == 2000
    assert info["train_by_carries"] == {"0": 500, "1": 500, "2": 500, "3": 500}
    assert info["train_by_digits"] == {"1": 100, "2": 180, "3": 1720}
    assert info["train_uses_excluded"] == 0
    expected_chars = sum(len(f"${p.question}={str(p.answer)[::-1]}$\n") for p in splits.train) / 2000
    assert info["mean_sample_chars"] == pytest.approx(expected_chars)


def test_describe_counts_overlap_when_splits_share_problems(splits):
    from arithlab.data import Splits

    shared = Splits(splits.train, splits.train[:7], splits.train[5:8] + splits.test[:10])
    overlap = describe(shared, "plain", [])["overlap"]
    assert overlap == {"train_test": 3, "train_validation": 7, "validation_test": 2}


def test_build_splits_is_deterministic_for_a_data_seed(splits):
    again = build_splits(DataConfig(**SMALL))
    assert (again.train, again.validation, again.test) == (splits.train, splits.validation, splits.test)
    other = build_splits(DataConfig(**SMALL, seed=1))
    assert set(other.train) != set(splits.train)


def test_excluded_number_stays_out_of_training_only(excluded_splits):
    info = describe(excluded_splits, "reverse", [527])
    assert info["train_uses_excluded"] == 0
    assert info["excluded_numbers"] == [527]
    assert not any(527 in (p.a, p.b) for p in excluded_splits.train)
    assert info["train_by_carries"] == {"0": 500, "1": 500, "2": 500, "3": 500}
    # The test set is what measures generalisation to the excluded number: it may hold it.
    assert any(527 in (p.a, p.b) for p in excluded_splits.test + excluded_splits.validation)


def test_describe_counts_training_problems_using_an_excluded_number(splits):
    uses = sum(1 for p in splits.train if 527 in (p.a, p.b))
    assert uses > 0
    assert describe(splits, "plain", [527])["train_uses_excluded"] == uses


def test_build_splits_rejects_a_format_that_cannot_write_the_operation():
    with pytest.raises(ArithlabError, match="simplified"):
        build_splits(
            DataConfig(
                operation="mul", format="simplified", digits=2, sampling="uniform", n_train=50, n_val=5, n_test=5
            )
        )


def test_uniform_training_sampling_is_disjoint_from_the_test_set():
    got = build_splits(DataConfig(operation="sub", sampling="uniform", digits=2, n_train=3000, n_val=300, n_test=3000))
    train, val, test = set(got.train), set(got.validation), set(got.test)
    assert len(train) == len(test) == 3000 and len(val) == 300
    assert not (train & test or train & val or val & test)
    assert all(p.op == "-" for p in got.train)


# ---------------------------------------------------------------------------------------
# Problem files.


def _file(tmp_path: Path, text: str, name: str = "problems.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_problems_accepts_answered_open_and_bare_problems(tmp_path):
    path = _file(tmp_path, "686+753=1439\n686+753=\n686+753\n128-367=-239\n12*34=408\n")
    assert read_problems(path) == [
        Problem("+", 686, 753),
        Problem("+", 686, 753),
        Problem("+", 686, 753),
        Problem("-", 128, 367),
        Problem("*", 12, 34),
    ]


def test_read_problems_skips_blank_lines_and_surrounding_whitespace(tmp_path):
    path = _file(tmp_path, "\n  1+2=3  \n\n4+5\n")
    assert read_problems(path) == [Problem("+", 1, 2), Problem("+", 4, 5)]


def test_wrong_stated_answer_names_file_line_number_and_line(tmp_path):
    path = _file(tmp_path, "1+2=3\n\n686+753=1440\n")
    with pytest.raises(ArithlabError) as info:
        read_problems(path)
    message = str(info.value)
    assert f"{path}:3" in message
    assert "686+753=1440" in message
    assert "1439" in message  # and the true answer


@pytest.mark.parametrize("line", ["686 + 753 = 1439", "hello", "686+753=abc", "-5+3=-2", "686/753"])
def test_non_problem_line_names_file_line_number_and_line(tmp_path, line):
    path = _file(tmp_path, f"1+2=3\n{line}\n")
    with pytest.raises(ArithlabError) as info:
        read_problems(path)
    message = str(info.value)
    assert f"{path}:2" in message
    assert line in message


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty_problem_file_is_an_error(tmp_path, text):
    path = _file(tmp_path, text)
    with pytest.raises(ArithlabError, match="no problems") as info:
        read_problems(path)
    assert str(path) in str(info.value)


def test_missing_problem_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "absent.txt"
    with pytest.raises(ArithlabError) as info:
        read_problems(path)
    assert str(path) in str(info.value)


def test_binary_problem_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ArithlabError) as info:
        read_problems(path)
    assert str(path) in str(info.value)


def test_write_then_read_problems_round_trips(tmp_path, splits):
    problems = splits.test[:300] + [Problem("-", 128, 367), Problem("*", 12, 34), Problem("+", 0, 0)]
    path = tmp_path / "out.txt"
    write_problems(path, problems)
    assert read_problems(path) == problems
    lines = path.read_text().splitlines()
    assert lines[-3:] == ["128-367=-239", "12*34=408", "0+0=0"]
    assert path.read_text().endswith("\n")


def test_test_file_overlapping_the_training_file_is_an_error_naming_the_count(tmp_path):
    train = [Problem("+", a, b) for a in range(10) for b in range(10)]
    test = train[:4] + [Problem("+", 100 + i, 200) for i in range(20)]
    train_file, test_file = tmp_path / "train.txt", tmp_path / "test.txt"
    write_problems(train_file, train)
    write_problems(test_file, test)
    cfg = DataConfig(train_file=str(train_file), test_file=str(test_file), n_val=10)
    with pytest.raises(ArithlabError) as info:
        build_splits(cfg)
    message = str(info.value)
    assert "4 test problems" in message
    assert str(test_file) in message


def test_disjoint_problem_files_are_used_as_given(tmp_path):
    train = [Problem("+", a, b) for a in range(10) for b in range(10)]
    test = [Problem("+", 100 + i, 200) for i in range(20)]
    train_file, test_file = tmp_path / "train.txt", tmp_path / "test.txt"
    write_problems(train_file, train)
    write_problems(test_file, test)
    got = build_splits(DataConfig(train_file=str(train_file), test_file=str(test_file), n_val=50))
    assert got.train == train and got.test == test
    assert len(got.validation) == 50
    assert not set(got.validation) & (set(train) | set(test))


def test_training_file_with_generated_test_set_keeps_them_disjoint(tmp_path):
    train = [Problem("+", a, b) for a in range(30) for b in range(30)]
    train_file = _file(tmp_path, "".join(f"{p.question}\n" for p in train))
    got = build_splits(DataConfig(train_file=str(train_file), digits=2, n_test=3000, n_val=300))
    assert got.train == train
    assert not set(got.test) & set(train)
    assert not set(got.validation) & (set(train) | set(got.test))


def test_several_operations_split_training_by_shares_and_test_each_fully():
    cfg = load_config(
        None,
        [
            "data.operations=[add, sub, mul]",
            "data.shares=[2, 1, 1]",
            "data.sampling=uniform",
            "data.n_train=800",
            "data.n_test=50",
            "data.n_val=10",
            "data.format=detailed",
        ],
    ).data
    splits = build_splits(cfg)
    summary = describe(splits, "detailed", [])
    assert summary["train_by_operation"] == {"add": 400, "mul": 200, "sub": 200}
    assert summary["sizes"] == {"train": 800, "validation": 30, "test": 150}
    assert summary["overlap"] == {"train_test": 0, "train_validation": 0, "validation_test": 0}


def test_shares_that_do_not_match_the_operations_are_a_config_error():
    with pytest.raises(ArithlabError, match="data.shares"):
        load_config(None, ["data.operations=[add, sub]", "data.shares=[1]"])


def _lengths(problem: Problem) -> tuple[int, int]:
    return len(str(problem.a)), len(str(problem.b))


def test_training_by_lengths_uses_only_those_lengths_and_tests_every_pair():
    cfg = DataConfig(lengths=[1, 2, 3, 4, 6, 7], test_lengths=[1, 5, 8], n_train=3000, n_val=50, n_test=90)
    splits = build_splits(cfg)
    train_lengths = {length for p in splits.train for length in _lengths(p)}
    assert train_lengths == {1, 2, 3, 4, 6, 7}  # the hole at 5 stays empty
    assert {length for p in splits.validation for length in _lengths(p)} <= train_lengths
    cells = [_lengths(p) for p in splits.test]
    # 10 a cell, except 1x1: its 100 problems are mostly taken by training.
    for cell in [(a, b) for a in (1, 5, 8) for b in (1, 5, 8) if (a, b) != (1, 1)]:
        assert cells.count(cell) == 10, cell
    assert 0 < cells.count((1, 1)) <= 10
    train, validation, test = map(set, (splits.train, splits.validation, splits.test))
    assert not (train & test or train & validation or validation & test)
    assert len(train) == 3000


def test_non_positive_lengths_are_a_config_error():
    with pytest.raises(ArithlabError, match=r"data.test_lengths: \[0, 3\] must be lengths of at least 1 digit"):
        load_config(None, ["data.lengths=[2]", "data.test_lengths=[0, 3]", "data.n_train=10"])


# ---------------------------------------------------------------------------------------
# A second test set, stratified by operand lengths.


def test_length_test_fills_every_length_pair_and_avoids_every_training_set():
    small = dict(digits=2, n_val=10, n_test=20)
    configs = [DataConfig(n_train=300, **small), DataConfig(n_train=600, seed=1, **small)]
    problems = length_test(configs, per_cell=40, seed=0)
    cells = Counter(operand_lengths(p) for p in problems)
    # 1x1 has 100 problems in all and balanced training holds every one of them.
    assert cells == {(1, 2): 40, (2, 1): 40, (2, 2): 40}
    assert len(set(problems)) == len(problems)
    for cfg in configs:
        assert not set(build_splits(cfg).train) & set(problems)


def test_extra_test_file_is_read_and_must_not_overlap_training(tmp_path):
    cfg = DataConfig(n_train=300, digits=2, n_val=10, n_test=20)
    path = tmp_path / "extra.txt"
    write_problems(path, length_test([cfg], per_cell=5, seed=0))
    splits = build_splits(DataConfig(**{**cfg.__dict__, "extra_test_file": str(path)}))
    assert splits.extra_test == read_problems(path)
    write_problems(path, splits.train[:3] + splits.extra_test)
    with pytest.raises(ArithlabError, match=f"{path}: 3 test problems are also in the training set"):
        build_splits(DataConfig(**{**cfg.__dict__, "extra_test_file": str(path)}))


def test_validation_by_lengths_holds_every_length_pair_equally_and_nothing_of_train_or_test():
    cfg = DataConfig(n_train=300, digits=2, n_val=40, n_test=50, val_sampling="lengths")
    splits = build_splits(cfg)
    # 40 over the 4 cells, 10 a cell; 1x1 has none left (balanced training holds all 100 one-digit pairs).
    assert Counter(operand_lengths(p) for p in splits.validation) == {(1, 2): 10, (2, 1): 10, (2, 2): 10}
    assert not set(splits.validation) & (set(splits.train) | set(splits.test))
    assert build_splits(DataConfig(**{**cfg.__dict__, "val_sampling": None})).validation != splits.validation
    with pytest.raises(ArithlabError, match="data.val_sampling: lengths is for operations on integers"):
        load_config(None, ["data.operation=sin", "data.format=plain", "data.val_sampling=lengths"])
