"""Fault injection: kill a training at random moments, resume it, and count the runs that
end bit-identical to the same training left alone.

Each trial starts `arithlab train` on a tiny config (2-digit addition, a 1-layer model
with dropout and position shifts, so that every random state matters; a checkpoint every
25 of 300 steps) and stops it with SIGKILL or SIGINT (Ctrl-C): half the trials at a random
time from the start of the process to the end of training, half the moment a checkpoint
write is under way (`checkpoint.tmp` exists). Then `arithlab train --resume` continues
it with unchanged settings; a run stopped before its config was written has nothing to
resume and is trained again with --force, as the error says. Identical means: every
weight tensor equal, the same metrics.jsonl rows (but their seconds), the same
predictions.jsonl and the same eval.json (but its seconds).

    python benchmarks/faults.py [--trials 20] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import save
from safetensors.torch import load_file

SETTINGS = {
    "name": "faults",
    "data": {"digits": 2, "n_train": 500, "n_val": 20, "n_test": 50},
    "model": {"n_layer": 1, "n_embd": 32, "n_head": 2, "dropout": 0.1},
    "train": {
        "batch_size": 32,
        "max_iters": 300,
        "eval_interval": 25,
        "lr": 4e-3,
        "warmup_iters": 20,
        "position_offset": 8,
        "threads": 1,
    },
}
ARITHLAB = [sys.executable, "-m", "arithlab", "train", "--quiet"]


def start(config: Path, run: Path) -> subprocess.Popen:
    return subprocess.Popen([*ARITHLAB, str(config), "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_checkpoint_write(proc: subprocess.Popen, run: Path, nth: int) -> bool:
    """Poll until the `nth` checkpoint write is under way; False if training ended first."""
    tmp, seen, was = run / "checkpoint.tmp", 0, False
    while proc.poll() is None:
        now = tmp.exists()
        seen += now and not was
        was = now
        if seen >= nth:
            return True
    return False


def resume(config: Path, run: Path) -> str:
    """Continue the stopped run as its user would; how it went on."""
    done = subprocess.run([*ARITHLAB, "--resume", str(run)], capture_output=True, text=True)
    if done.returncode == 0:
        return "resumed"
    if "no run to resume" not in done.stderr:
        raise RuntimeError(f"resume failed: {done.stderr.strip()}")
    subprocess.run([*ARITHLAB, str(config), "--out", str(run), "--force"], check=True, capture_output=True)
    return "trained again"


def differences(run: Path, whole: Path) -> list[str]:
    """What differs between run `run` and the uninterrupted `whole`."""
    found = []
    ours, theirs = load_file(str(run / "model.safetensors")), load_file(str(whole / "model.safetensors"))
    if ours.keys() != theirs.keys() or not all(torch.equal(ours[k], theirs[k]) for k in ours):
        found.append("weights")

    def rows(path: Path) -> list[dict]:
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]

    for name in ("metrics.jsonl", "eval.json"):
        if rows(run / name) != rows(whole / name):
            found.append(name)
    if (run / "predictions.jsonl").read_text() != (whole / "predictions.jsonl").read_text():
        found.append("predictions.jsonl")
    return found


def trial(number: int, rng: random.Random, config: Path, whole: Path, wall: float, out: Path) -> dict:
    run = out / f"trial_{number:02d}"
    sig = (signal.SIGKILL, signal.SIGINT)[number % 2]
    during_write = number % 4 >= 2
    proc = start(config, run)
    if during_write:
        moment = f"checkpoint write {rng.randint(1, 11)}"  # the 12th, at the last step, ends training anyway
        hit = wait_for_checkpoint_write(proc, run, int(moment.split()[-1]))
    else:
        delay = rng.uniform(0, 0.85 * wall)  # the rest of the time the test set is evaluated
        moment = f"{delay:.2f} s after start"
        time.sleep(delay)
        hit = proc.poll() is None
    if hit:
        proc.send_signal(sig)
    proc.communicate()
    state = run / "checkpoint" / "state.json"
    row = {
        "trial": number,
        "signal": signal.Signals(sig).name,
        "moment": moment,
        "stopped_before_the_end": hit and not (run / "eval.json").exists(),
        "checkpoint_write_under_way": (run / "checkpoint.tmp").exists(),
        "checkpoint_iter": json.loads(state.read_text())["iter"] if state.exists() else None,
    }
    row["how"] = resume(config, run)
    row["differences"] = differences(run, whole)
    row["identical"] = not row["differences"]
    return row


def trials(count: int, seed: int, out: Path) -> tuple[list[dict], float]:
    """The uninterrupted run, then `count` trials against it; (their rows, its wall time)."""
    config = out / "faults.yaml"
    config.write_text(json.dumps(SETTINGS))  # JSON is YAML
    started = time.perf_counter()
    subprocess.run([*ARITHLAB, str(config), "--out", str(out / "whole")], check=True, capture_output=True)
    wall = time.perf_counter() - started
    print(f"uninterrupted run: {wall:.1f} s")
    rng = random.Random(seed)
    rows = []
    for number in range(count):
        rows.append(trial(number, rng, config, out / "whole", wall, out))
        r = rows[-1]
        print(
            f"{number:2d} {r['signal']:7s} {r['moment']:22s} "
            f"{'stopped' if r['stopped_before_the_end'] else 'after the end'}"
            f"{', checkpoint write cut' if r['checkpoint_write_under_way'] else ''}, "
            f"checkpoint at {r['checkpoint_iter']}, "
            f"{r['how']}: {'identical' if r['identical'] else 'DIFFERS in ' + ', '.join(r['differences'])}"
        )
    return rows, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="6 trials")
    args = parser.parse_args()
    if args.quick:
        args.trials = 6
    with tempfile.TemporaryDirectory(prefix="arithlab-faults-") as scratch:
        rows, wall = trials(args.trials, args.seed, Path(scratch))
    identical = sum(r["identical"] for r in rows)
    stopped = sum(r["stopped_before_the_end"] for r in rows)
    print(f"identical: {identical}/{len(rows)} ({stopped} of them stopped before the run was done)")
    result = {
        "benchmark": "faults",
        "command": "python benchmarks/faults.py " + " ".join(sys.argv[1:]),
        "settings": SETTINGS,
        "uninterrupted_wall_s": round(wall, 1),
        "identical": identical,
        "trials": len(rows),
        "stopped_before_the_end": stopped,
        "rows": rows,
        "load_average": os.getloadavg()[0],
    }
    save("faults", result, args.quick)


if __name__ == "__main__":
    main()
