"""Benchmark: wall time and training tokens until 99% on 3-digit addition, per objective.

Same model (the `small` preset), same data (reverse format, 10,000 balanced samples, the
same validation problems), one process, one after the other:
- `answer`: our recipe (the quickstart's config: answer-only loss, batch 128, random
  position shifts);
- `stream`: the study's protocol and settings (samples joined into one text, random
  256-character windows, loss on every character; batch 256, lr 1e-3, warm-up 100, cosine
  over 5,000 iterations), capped at 30 minutes (5 with --quick).
Time to 99% is the training time (validation included) at the first evaluation whose 500
validation problems are at least 99% right. Where `stream` never gets there, the ratio is
a lower bound, reported with the best accuracy it reached.

    python benchmarks/time_to_accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import save

from arithlab.cli import quickstart_config_path
from arithlab.config import load_config
from arithlab.trainer import train

TARGET = 0.99
STREAM = [
    "train.objective=stream",
    "train.batch_size=256",
    "model.block_size=256",
    "train.lr=1e-3",
    "train.warmup_iters=100",
    "train.max_iters=5000",
    "train.position_offset=0",
]


def run(name: str, overrides: list[str], workdir: Path) -> dict:
    cfg = load_config(quickstart_config_path(), [f"name={name}", f"train.target_accuracy={TARGET}", *overrides])
    out = train(cfg, workdir / name, progress=False)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    reached = next((m for m in metrics if m["val_accuracy"] >= TARGET), None)
    last = metrics[-1]
    return {
        "objective": cfg.train.objective,
        "settings": overrides,
        "reached_99": reached is not None,
        "seconds_to_99": reached["seconds"] if reached else None,
        "tokens_to_99": reached["tokens_seen"] if reached else None,
        "iters_to_99": reached["iter"] if reached else None,
        "seconds_run": last["seconds"],
        "tokens_run": last["tokens_seen"],
        "best_val_accuracy": max(m["val_accuracy"] for m in metrics),
        "test_accuracy": json.loads((out / "eval.json").read_text())["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="cap the stream run at 5 minutes instead of 30")
    args = parser.parse_args()
    cap = 5 if args.quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        answer = run("answer", [], Path(tmp))
        stream = run("stream", [*STREAM, f"train.max_minutes={cap}"], Path(tmp))
    for row in (answer, stream):
        when = f"{row['seconds_to_99']:.0f} s, {row['tokens_to_99']:,} tokens" if row["reached_99"] else "not reached"
        print(
            f"{row['objective']:>6}: 99% validation {when}; ran {row['seconds_run']:.0f} s, "
            f"best validation {row['best_val_accuracy']:.1%}, test {row['test_accuracy']:.2%}"
        )
    if stream["reached_99"]:
        ratio, bound = stream["seconds_to_99"] / answer["seconds_to_99"], "="
    else:
        ratio, bound = stream["seconds_run"] / answer["seconds_to_99"], ">="
    print(f"speedup: {ratio:.2f}  (answer over stream, wall time to 99%; {bound} where stream did not reach it)")
    result = {
        "benchmark": "time_to_accuracy",
        "target": TARGET,
        "stream_cap_minutes": cap,
        "answer": answer,
        "stream": stream,
        "speedup_wall": round(ratio, 2),
        "speedup_is_lower_bound": not stream["reached_99"],
    }
    save("time_to_accuracy", result, args.quick)


if __name__ == "__main__":
    main()
