import numpy as np
import pytest

from arithlab.errors import ArithlabError
from arithlab.matrix_completion import (
    addition_table,
    completion_curve,
    connected,
    determined,
    rectangle_rule,
    reveal,
    rule_accuracy,
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
    assert np.array_equal(known, determined(mask))  # entry by entry, not only the whole table
    assert np.array_equal(values[known], truth[known])  # whatever it fills is right


def test_rule_accuracy_is_the_share_of_test_entries_linked_to_the_training_entries():
    # Revealed: (0,0), (0,1), (1,1) link rows 0-1 and columns 0-1; (3,3) links row and column 3.
    train = [(0, 0), (0, 1), (1, 1), (3, 3)]
    test = [(1, 0), (3, 3), (0, 3), (2, 2)]  # filled, filled, not (two blocks), not (row 2 unseen)
    assert rule_accuracy(train, test, 4) == 0.5


def test_completion_probability_rises_with_entries_revealed():
    curve = completion_curve(10, [8, 30, 60], trials=10)
    assert curve["rectangle_rule"][0] == 0.0 and curve["rectangle_rule"][-1] == 1.0


@pytest.mark.parametrize("solver", ["svt", "scs"])
def test_nuclear_norm_recovers_the_table_from_enough_entries_and_not_from_a_few(solver):
    from arithlab.matrix_completion import completed_by_nuclear_norm, nuclear_norm

    rng = np.random.default_rng(0)
    many = reveal(12, 100, rng)
    assert completed_by_nuclear_norm(many, solver)
    assert np.abs(nuclear_norm(addition_table(12), many, solver) - addition_table(12)).max() < 1e-3
    # 12 entries cannot pin down a rank-2 12 x 12 table (it has 23 degrees of freedom).
    assert not completed_by_nuclear_norm(reveal(12, 12, rng), solver)


def test_numpy_solver_decides_as_scs_does_around_the_threshold():
    from arithlab.matrix_completion import completed_by_nuclear_norm

    rng = np.random.default_rng(1)
    masks = [reveal(20, count, rng) for count in (60, 90, 120, 160, 200, 240) for _ in range(2)]
    svt = [completed_by_nuclear_norm(m, "svt") for m in masks]
    assert svt == [completed_by_nuclear_norm(m, "scs") for m in masks]
    assert not svt[0] and svt[-1]  # the threshold lies inside the range


def test_unknown_solver_is_named():
    from arithlab.matrix_completion import nuclear_norm

    with pytest.raises(ArithlabError, match="solver 'cvx'"):
        nuclear_norm(addition_table(3), np.ones((3, 3), bool), "cvx")


def test_both_methods_are_measured_on_the_same_revealed_entries():
    curve = completion_curve(8, [10, 64], trials=3)
    # All 64 entries revealed: both methods complete it; 10 cannot connect 16 rows and columns.
    assert curve["rectangle_rule"] == [0.0, 1.0] and curve["nuclear_norm"][1] == 1.0
    assert curve["nuclear_norm"][0] == 0.0


def test_completion_command_measures_then_redraws_stored_curves(tmp_path):
    import json

    from arithlab.cli import main

    main(["completion", "--n", "6", "--trials", "2", "--rule-only", "--out", str(tmp_path / "a")])
    stored = json.loads((tmp_path / "a" / "completion.json").read_text())["curves"]
    assert stored[0]["n"] == 6 and stored[0]["revealed"] == [3, 6, 9, 12, 18, 24] and "nuclear_norm" not in stored[0]
    assert stored[0]["rectangle_rule"][-1] == 1.0  # seed 0: both reveals of 24 of 36 entries connect the 6 x 6 table
    main(["completion", "--curves", str(tmp_path / "a" / "completion.json"), "--out", str(tmp_path / "b")])
    assert json.loads((tmp_path / "b" / "completion.json").read_text())["curves"] == stored
    assert (tmp_path / "b" / "completion_n6.png").read_bytes()[:4] == b"\x89PNG"


def test_completion_command_scores_the_rule_on_each_sweep_runs_own_training_and_test_sets(tmp_path):
    import json

    from arithlab.cli import main
    from arithlab.data import read_problems
    from arithlab.experiments import run_sweep

    spec = {
        "name": "two_digit",
        "set": {
            "data.digits": 2,
            "data.sampling": "uniform",
            "data.n_val": 10,
            "data.n_test": 200,
            "model.preset": "tiny",
            "train.max_iters": 4,
            "train.eval_interval": 4,
            "train.threads": 1,
        },
        "axes": {"data.n_train": [150, 3000]},
    }
    (tmp_path / "sweep.yaml").write_text(json.dumps(spec))
    run_sweep(tmp_path / "sweep.yaml", out=tmp_path / "sweep")
    main(["completion", "--n", "100", "--trials", "1", "--rule-only", "--sweep", str(tmp_path / "sweep"),
          "--out", str(tmp_path / "out")])  # fmt: skip
    assert (tmp_path / "out" / "completion_n100.png").read_bytes()[:4] == b"\x89PNG"
    # The score the figure draws, recomputed here from the runs' own files: 150 random
    # entries leave most of the table out of reach; 3,000 link every row and column.
    scores = []
    for name in ("n_train-150", "n_train-3000"):
        train, test = (
            [(p.a, p.b) for p in read_problems(tmp_path / "sweep" / name / f)] for f in ("train.txt", "test.txt")
        )
        scores.append(rule_accuracy(train, test, 100))
    assert scores[0] < 0.5 and scores[1] == 1.0
    stored = json.loads((tmp_path / "out" / "completion.json").read_text())["sweep"]
    assert [(r["run"], r["rule_accuracy"]) for r in stored] == list(zip(("n_train-150", "n_train-3000"), scores))
    # Redrawn from completion.json alone, the transformer's points stay with the curves.
    main(["completion", "--curves", str(tmp_path / "out" / "completion.json"), "--out", str(tmp_path / "again")])
    assert json.loads((tmp_path / "again" / "completion.json").read_text())["sweep"] == stored
