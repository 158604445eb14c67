"""Benchmark: does `arithlab quickstart` reach 99% exact match within 5 minutes here?

Runs the quickstart exactly as a user would (a fresh run directory, the packaged config),
then prints and saves the wall time, the training time, the accuracy, and where in
training the validation accuracy first reached 99%.

    python benchmarks/quickstart.py [--out runs/bench-quickstart]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quickstart"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    command = [sys.executable, "-m", "arithlab", "quickstart", "--quiet", "--force", "--out", str(args.out)]
    for override in args.overrides:
        command += ["--set", override]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    summary = json.loads((args.out / "eval.json").read_text())
    metrics = [json.loads(line) for line in (args.out / "metrics.jsonl").read_text().splitlines()]
    first_99 = next((m for m in metrics if m["val_accuracy"] >= 0.99), None)
    result = {
        "benchmark": "quickstart",
        "command": " ".join(command[1:]),
        "wall_seconds": round(wall, 1),
        "train_seconds": round(summary["seconds"], 1),
        "test_accuracy": summary["accuracy"],
        "test_n": summary["n"],
        "iters": summary["iters"],
        "val_99_at": first_99,
        "target": "test accuracy >= 0.99 within 300 s wall",
        "met": summary["accuracy"] >= 0.99 and wall <= 300,
    }
    save("quickstart", result)
    print(
        f"quickstart: accuracy {summary['accuracy']:.2%} on {summary['n']} problems, wall {wall:.0f} s "
        f"(training {summary['seconds']:.0f} s), target met: {result['met']}"
    )


if __name__ == "__main__":
    main()
