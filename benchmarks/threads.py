"""Benchmark: training steps per second of the quickstart's model (the `small` preset,
3-digit reverse addition, answer objective, batch 128) while other processes keep cores
busy, at the default thread count (`devices.default_threads`) against fixed counts.

A training step split over threads waits for the slowest of them, and a thread that
shares its core with another busy process runs at half speed or less, so the whole step
does. `--busy N` starts N processes that spin for the whole benchmark (on a machine
already busy, give 0 and say so); the default thread count is taken after `--settle`
seconds, once the load average has seen them. Each setting runs in its own process.

    python benchmarks/threads.py [--busy 1] [--threads 1 2] [--steps 60] [--settle 70] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import save, time_steps


def worker(setting: str, steps: int) -> None:
    """Time `steps` training steps at `setting` threads ("default": the trainer's choice)."""
    import torch

    from arithlab.devices import default_threads

    threads = default_threads() if setting == "default" else int(setting)
    torch.set_num_threads(threads)
    row = time_steps("small", "answer", 128, steps)
    print(json.dumps({"setting": setting, "threads": threads, "steps_per_s": round(1000 / row["step_ms"], 2), **row}))


def measure(setting: str, steps: int) -> dict:
    load = os.getloadavg()[0]
    command = [sys.executable, __file__, "--worker", setting, "--steps", str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout.splitlines()[-1]), "load_average_before": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=1, help="processes that keep a core busy meanwhile")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="fixed thread counts to compare")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per setting")
    parser.add_argument("--settle", type=float, default=70, help="seconds for the load average to see the busy ones")
    parser.add_argument("--quick", action="store_true", help="20 steps, 20 s to settle")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.settle = 20, 20
    if args.worker:
        worker(args.worker, args.steps)
        return
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(args.settle if spinners else 0)
        rows = [measure(setting, args.steps) for setting in ("default", *map(str, args.threads))]
    finally:
        for spinner in spinners:
            spinner.kill()
    for row in rows:
        print(
            f"{row['setting']:>7} ({row['threads']} {'thread' if row['threads'] == 1 else 'threads'}): "
            f"{row['steps_per_s']:.2f} steps/s, "
            f"{row['step_ms']} ms/step (load average before: {row['load_average_before']})"
        )
    command = "python benchmarks/threads.py " + " ".join(sys.argv[1:])
    save("threads", {"benchmark": "threads", "command": command.strip(), "busy": args.busy, "rows": rows}, args.quick)


if __name__ == "__main__":
    main()
