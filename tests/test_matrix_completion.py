import numpy as np
import pytest

from arithlab.matrix_completion import (
    addition_table,
    completion_curve,
    connected,
    rectangle_rule,
    reveal,
)


def test_addition_table_has_rank_two():
    assert np.linalg.matrix_rank(addition_table(12)) == 2


def test_rectangle_rule_fills_a_hand_checked_table():
    truth = addition_table(3)
    mask = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]], dtype=bool)  # row 0, column 1, row 2
    values, known = rectangle_rule(truth, mask)
    assert known.all() and np.array_equal(values, truth)


def test_rectangle_rule_cannot_cross_disconnected_blocks():
    truth = addition_table(4)
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True  # rows 0-1 x columns 0-1 only
    mask[2:, 2:] = True
    _, known = rectangle_rule(truth, mask)
    assert known[:2, :2].all() and not known[:2, 2:].any() and not connected(mask)


@pytest.mark.parametrize("seed", range(20))
def test_rectangle_rule_completes_exactly_when_rows_and_columns_are_connected(seed):
    rng = np.random.default_rng(seed)
    truth = addition_table(7)
    mask = reveal(7, int(rng.integers(6, 20)), rng)
    values, known = rectangle_rule(truth, mask)
    assert known.all() == connected(mask)
    assert np.array_equal(values[known], truth[known])  # whatever it fills is right


def test_completion_probability_rises_with_entries_revealed():
    curve = completion_curve(10, [8, 30, 60], trials=10)
    assert curve["rectangle_rule"][0] == 0.0 and curve["rectangle_rule"][-1] == 1.0
