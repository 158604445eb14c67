"""Benchmark: training throughput per model size and objective.

For the `small` default, the study's `nanogpt` (10.6M) and `gpt2` (124M) presets, and the
`answer` and `stream` (256-character windows) objectives: training tokens/s (non-padding
input tokens), samples/s, step time and peak memory (GPU memory on CUDA; on the CPU the
process's peak resident size, each configuration in a fresh process). Batch sizes shrink
with the model so that a CPU finishes; tokens/s is the number to compare.

    python benchmarks/throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

# (preset, objective, rows per batch): about the same tokens per step within a preset.
GRID = [
    ("small", "answer", 256),
    ("small", "stream", 16),
    ("nanogpt", "answer", 64),
    ("nanogpt", "stream", 4),
    ("gpt2", "answer", 16),
    ("gpt2", "stream", 1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 timed steps per configuration instead of 10")
    parser.add_argument("--one", nargs=3, metavar=("PRESET", "OBJECTIVE", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # one configuration, in its own process so peak memory is its own
        from common import time_steps

        preset, objective, batch = args.one
        print(json.dumps(time_steps(preset, objective, int(batch), args.steps)))
        return
    from common import save

    steps = 3 if args.quick else 10
    rows = []
    for preset, objective, batch in GRID:
        done = subprocess.run(
            [sys.executable, __file__, "--one", preset, objective, str(batch), "--steps", str(steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{preset:>8} {objective:>6} batch {batch:>3}: {row['tokens_per_s']:>8} tokens/s, "
            f"{row['samples_per_s']:>8} samples/s, {row['step_ms']:>8} ms/step, peak {row['peak_memory_mb']} MB",
            flush=True,
        )
    small = {r["objective"]: r for r in rows if r["preset"] == "small"}
    ratio = small["answer"]["samples_per_s"] / small["stream"]["samples_per_s"]
    print(f"speedup: {ratio:.2f}  (samples/s, answer over stream, small model: stream also predicts the operands)")
    save("throughput", {"benchmark": "throughput", "rows": rows}, args.quick)


if __name__ == "__main__":
    main()
