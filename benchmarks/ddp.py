"""Benchmark: data-parallel scaling, 1 process against N processes (torchrun, gloo on CPU).

Trains the quickstart's model and data for a fixed number of steps of the same global
batch, once in one process (all cores) and once in N processes (cores / N threads each),
and reports training tokens/s of each and their ratio. On a 2-core machine the two
processes share the same cores, so this measures the cost of DDP more than its gain.

    python benchmarks/ddp.py [--processes 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import save

from arithlab.cli import quickstart_config_path


def run(processes: int, iters: int, workdir: Path) -> dict:
    out = workdir / f"p{processes}"
    settings = [
        f"train.max_iters={iters}",
        f"train.eval_interval={iters}",
        "train.target_accuracy=null",
        "data.n_val=50",
        "data.n_test=200",
        "train.batch_size=256",
    ]
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*launcher, "-m", "arithlab", "train", str(quickstart_config_path()), "--quiet", "--out", str(out)]
    for setting in settings:
        command += ["--set", setting]
    subprocess.run(command, check=True, capture_output=True)
    summary = json.loads((out / "eval.json").read_text())
    return {
        "processes": processes,
        "iters": summary["iters"],
        "seconds": round(summary["seconds"], 1),
        "tokens_per_s": round(summary["tokens_seen"] / summary["seconds"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="100 steps instead of 400")
    args = parser.parse_args()
    iters = 100 if args.quick else 400
    with tempfile.TemporaryDirectory() as tmp:
        single = run(1, iters, Path(tmp))
        multi = run(args.processes, iters, Path(tmp))
    for row in (single, multi):
        steps = f"{row['iters']} steps, {row['seconds']} s"
        print(f"{row['processes']} process(es): {row['tokens_per_s']:,} tokens/s ({steps})")
    ratio = multi["tokens_per_s"] / single["tokens_per_s"]
    print(f"speedup: {ratio:.2f}  ({args.processes} DDP processes over 1, training tokens/s, {os.cpu_count()} cores)")
    save("ddp", {"benchmark": "ddp", "single": single, "multi": multi, "speedup": round(ratio, 2)}, args.quick)


if __name__ == "__main__":
    main()
