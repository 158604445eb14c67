"""Low-rank matrix completion of the addition table, the study's point of comparison.

The n x n table M[i][j] = i + j has rank 2. Reveal some entries at random: can the rest be
recovered? By the rectangle rule: wherever three corners of a rectangle are known, the
fourth is M[i][l] = M[i][j] + M[k][l] - M[k][j]; applied until nothing changes. It
completes the table exactly when the revealed entries connect every row and column (seen
as a bipartite graph), which `connected` checks independently. `completion_curve`
measures the probability of completion against the number revealed.
"""

from __future__ import annotations

import numpy as np


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


def connected(mask: np.ndarray) -> bool:
    """Whether the revealed entries connect all rows and columns (union-find)."""
    n_rows, n_cols = mask.shape
    parent = list(range(n_rows + n_cols))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(*np.nonzero(mask)):
        parent[find(int(i))] = find(n_rows + int(j))
    return len({find(x) for x in range(n_rows + n_cols)}) == 1


def completion_curve(n: int, counts: list[int], trials: int, seed: int = 0) -> dict:
    """Probability that the rectangle rule completes the table, per number revealed."""
    rng = np.random.default_rng(seed)
    # `connected` holds exactly when the rectangle rule completes the table (tested), and
    # is far cheaper than running the rule.
    rule = [sum(connected(reveal(n, count, rng)) for _ in range(trials)) / trials for count in counts]
    return {"n": n, "revealed": counts, "rectangle_rule": rule, "trials": trials}
