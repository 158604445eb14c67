"""Benchmark: `arithlab quickstart` as a user runs it, on two seeds and on 1 and 2 threads.

Each run is the packaged quickstart in a fresh run directory, in its own process, with
only `train.seed` and `train.threads` set. Targets (issue 14), each run:
- at least 99.9% exact match on its 10,000 uniform test problems;
- every operand-length cell with at least 20 test problems at 99% or more;
- at most 60 s of training and 90 s for the whole command (2-thread runs: the time target
  is for this 2-core machine using both cores).

    python benchmarks/quickstart.py [--seeds 0 1] [--threads 1 2] [--out runs/bench-quickstart]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import save

ACCURACY, CELL_ACCURACY, CELL_LEAST = 0.999, 0.99, 20
TRAIN_SECONDS, WALL_SECONDS = 60, 90


def one_run(out: Path, seed: int, threads: int) -> dict:
    command = [sys.executable, "-m", "arithlab", "quickstart", "--quiet", "--force", "--out", str(out)]
    command += ["--set", f"train.seed={seed}", "--set", f"train.threads={threads}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    summary = json.loads((out / "eval.json").read_text())
    cells = {k: v for k, v in summary["by_lengths"].items() if v["n"] >= CELL_LEAST}
    weakest = min(cells, key=lambda k: cells[k]["accuracy"])
    row = {
        "seed": seed,
        "threads": threads,
        "wall_seconds": round(wall, 1),
        "train_seconds": round(summary["seconds"], 1),
        "iters": summary["iters"],
        "stop_reason": summary["stop_reason"],
        "test_accuracy": summary["accuracy"],
        "test_n": summary["n"],
        "weakest_cell": weakest,
        "weakest_accuracy": cells[weakest]["accuracy"],
        "weakest_n": cells[weakest]["n"],
        "cells": {k: round(v["accuracy"], 4) for k, v in summary["by_lengths"].items()},
    }
    row["accuracy_met"] = row["test_accuracy"] >= ACCURACY and row["weakest_accuracy"] >= CELL_ACCURACY
    row["time_met"] = row["train_seconds"] <= TRAIN_SECONDS and wall <= WALL_SECONDS
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quickstart"))
    args = parser.parse_args()
    rows = []
    for threads in args.threads:
        for seed in args.seeds:
            row = one_run(args.out / f"seed{seed}_threads{threads}", seed, threads)
            rows.append(row)
            print(
                f"seed {seed}, {threads} thread(s): {row['test_accuracy']:.2%} on {row['test_n']:,}, weakest cell "
                f"{row['weakest_cell']} {row['weakest_accuracy']:.2%} (n={row['weakest_n']}); training "
                f"{row['train_seconds']:.0f} s, wall {row['wall_seconds']:.0f} s ({row['iters']} iterations); "
                f"accuracy target {'met' if row['accuracy_met'] else 'MISSED'}, "
                f"time target {'met' if row['time_met'] else 'missed'}",
                flush=True,
            )
    both_cores = [r for r in rows if r["threads"] == 2]
    result = {
        "benchmark": "quickstart",
        "targets": {
            "test_accuracy": ACCURACY,
            "every_cell_with_n_at_least": CELL_LEAST,
            "cell_accuracy": CELL_ACCURACY,
            "train_seconds": TRAIN_SECONDS,
            "wall_seconds": WALL_SECONDS,
        },
        "runs": rows,
        "accuracy_met": all(r["accuracy_met"] for r in rows),
        "time_met_on_2_threads": all(r["time_met"] for r in both_cores) if both_cores else None,
    }
    save("quickstart", result)
    print(
        f"accuracy target met on every run: {result['accuracy_met']}; time target met on 2 threads: "
        f"{result['time_met_on_2_threads']}"
    )


if __name__ == "__main__":
    main()
