"""Low-rank matrix completion of the addition table, the study's point of comparison.

The n x n table M[i][j] = i + j has rank 2. Reveal some entries at random: can the rest be
recovered? By the rectangle rule: wherever three corners of a rectangle are known, the
fourth is M[i][l] = M[i][j] + M[k][l] - M[k][j]; applied until nothing changes. It
completes the table exactly when the revealed entries connect every row and column (seen
as a bipartite graph), which `connected` checks independently. By nuclear-norm
minimization: the matrix of least nuclear norm that agrees with the revealed entries
(the convex relaxation of least rank), solved in numpy by ADMM with singular value
thresholding (`svt`, the default), or by cvxpy's SCS (`scs`, extra `[completion]`); it
completes the table when rounding it gives the table back. `completion_curve` measures
the probability of completion against the number revealed, for both; `rule_accuracy`
scores the rule like a model: trained on a run's training problems, tested on its test
problems.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from arithlab.data import read_problems
from arithlab.errors import ArithlabError


def addition_table(n: int) -> np.ndarray:
    return np.add.outer(np.arange(n), np.arange(n)).astype(float)


def reveal(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask with `count` entries revealed uniformly at random."""
    mask = np.zeros(n * n, dtype=bool)
    mask[rng.choice(n * n, size=count, replace=False)] = True
    return mask.reshape(n, n)


def rectangle_rule(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill what the rectangle rule can; returns (values, known mask)."""
    values, known = np.where(mask, values, 0.0), mask.copy()
    while True:
        # For every unknown (i, col): a column j known in row i, a row k known in both j and col.
        new = []
        for i, col in zip(*np.nonzero(~known)):
            js = np.nonzero(known[i])[0]
            ks = np.nonzero(known[:, col])[0]
            if not len(js) or not len(ks):
                continue
            corners = known[np.ix_(ks, js)]
            if corners.any():
                ki, ji = np.argwhere(corners)[0]
                k, j = ks[ki], js[ji]
                new.append((i, col, values[i, j] + values[k, col] - values[k, j]))
        if not new:
            return values, known
        for i, col, value in new:
            values[i, col], known[i, col] = value, True


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Component labels of the rows and of the columns in the bipartite graph whose edges
    are the revealed entries (union-find)."""
    n_rows, n_cols = mask.shape
    parent = list(range(n_rows + n_cols))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(*np.nonzero(mask)):
        parent[find(int(i))] = find(n_rows + int(j))
    labels = np.array([find(x) for x in range(n_rows + n_cols)])
    return labels[:n_rows], labels[n_rows:]


def determined(mask: np.ndarray) -> np.ndarray:
    """The entries the rectangle rule fills from `mask`'s: those whose row and column lie
    in one component (a path of revealed entries links them, and the rule walks it)."""
    rows, cols = _components(mask)
    return rows[:, None] == cols[None, :]


def connected(mask: np.ndarray) -> bool:
    """Whether the revealed entries connect all rows and columns: the rule completes the table."""
    return bool(determined(mask).all())


def rule_accuracy(train: list[tuple[int, int]], test: list[tuple[int, int]], n: int) -> float:
    """The rectangle rule's accuracy on `test` entries of the n x n table from the `train`
    entries: the share of test entries it fills (what it fills is always right)."""
    mask = np.zeros((n, n), dtype=bool)
    mask[tuple(np.array(train).T)] = True
    known = determined(mask)
    return float(np.mean([known[i, j] for i, j in test]))


def sweep_rule_accuracy(folder: Path, rows: list[dict], n: int = 100) -> None:
    """Add to each finished run of a 2-digit addition sweep `rule_accuracy`: how the
    rectangle rule does on that run's test problems from that run's training problems."""
    for row in rows:
        if row.get("status") == "done":
            run = Path(folder) / row["run"]
            train, test = ([(p.a, p.b) for p in read_problems(run / name)] for name in ("train.txt", "test.txt"))
            if max(max(pair) for pair in train + test) >= n:
                raise ArithlabError(f"{run}: operands of {n} or more; the completion figure is for the {n} x {n} table")
            row["rule_accuracy"] = rule_accuracy(train, test, n)


SOLVERS = ("svt", "scs")


def nuclear_norm(values: np.ndarray, mask: np.ndarray, solver: str = "svt") -> np.ndarray:
    """The matrix of least nuclear norm equal to `values` where `mask` is True."""
    if solver == "svt":
        return _nuclear_norm_svt(values, mask)
    if solver == "scs":
        return _nuclear_norm_scs(values, mask)
    raise ArithlabError(f"nuclear-norm solver {solver!r}: choose one of {', '.join(SOLVERS)}")


def _nuclear_norm_svt(values: np.ndarray, mask: np.ndarray, iters: int = 5000, tol: float = 1e-7) -> np.ndarray:
    """ADMM on min ||X||_* subject to X = Z, Z equal to `values` on `mask`: each step
    shrinks the singular values of Z - U by 1/rho, then puts the revealed entries back into
    Z. One 100 x 100 SVD a step, where SCS works on the 200 x 200 semidefinite form: 3-7x
    faster than SCS at n = 100 on one core, with the same decisions (tested at n = 20)."""
    rho = 1.0 / max(1.0, float(np.sqrt(np.mean(values[mask] ** 2))))  # step scaled to the entries
    z = np.where(mask, values, 0.0)
    u = np.zeros_like(z)
    for _ in range(iters):
        left, singular, right = np.linalg.svd(z - u, full_matrices=False)
        x = (left * np.maximum(singular - 1.0 / rho, 0.0)) @ right
        previous = z
        z = np.where(mask, values, x + u)
        u += x - z
        scale = tol * max(1.0, float(np.linalg.norm(z)))
        if np.linalg.norm(x - z) < scale and rho * np.linalg.norm(z - previous) < scale:
            break
    # Where the entries do not determine the table it converges slowly, to a matrix far from
    # it: as with SCS, 5,000 steps decide either way (rounding needs 0.5).
    return x


def _nuclear_norm_scs(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    try:
        import cvxpy as cp
    except ImportError:
        raise ArithlabError("nuclear-norm solver scs needs cvxpy: pip install 'arithlab[completion]'") from None
    x = cp.Variable(values.shape)
    problem = cp.Problem(cp.Minimize(cp.normNuc(x)), [x[mask] == values[mask]])
    # SCS, a first-order solver, scales to n = 100 (an interior-point one does not). Where
    # the entries do not determine the table it converges slowly, to a matrix far from it:
    # 5,000 iterations decide either way (a success is exact to ~1e-3, rounding needs 0.5).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "solution may be inaccurate"
        problem.solve(solver=cp.SCS, max_iters=5000)
    if x.value is None:
        raise ArithlabError(f"nuclear-norm completion: the solver ended {problem.status}")
    return x.value


def completed_by_nuclear_norm(mask: np.ndarray, solver: str = "svt") -> bool:
    """Whether nuclear-norm minimization recovers the addition table from `mask`'s
    entries, to the nearest integer everywhere."""
    truth = addition_table(mask.shape[0])
    return bool(np.array_equal(np.rint(nuclear_norm(truth, mask, solver)), truth))


def completion_curve(
    n: int, counts: list[int], trials: int, seed: int = 0, nuclear: bool = True, solver: str = "svt"
) -> dict:
    """Probability that each method completes the table, per number revealed (the same
    revealed entries for both)."""
    rng = np.random.default_rng(seed)
    masks = [[reveal(n, count, rng) for _ in range(trials)] for count in counts]
    # `connected` holds exactly when the rectangle rule completes the table (tested), and
    # is far cheaper than running the rule.
    curve = {"n": n, "revealed": counts, "trials": trials}
    curve["rectangle_rule"] = [sum(map(connected, row)) / trials for row in masks]
    if nuclear:
        curve["solver"] = solver
        curve["nuclear_norm"] = [sum(completed_by_nuclear_norm(m, solver) for m in row) / trials for row in masks]
    return curve


def default_counts(n: int) -> list[int]:
    """Entries to reveal, from n/2 to 80% of the table, spaced about evenly in log."""
    steps = (0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80)
    return sorted({round(n * k) for k in steps if k <= 0.8 * n})
