"""Benchmark: the training step with the last block run at the scored places only (the
default, `GPT.forward(scored=...)`), against the same step over whole rows.

For each addition format, the `small` model, the sweep's batch size, the `answer`
objective: both steps on the same batches, in alternating rounds in one process (so that
the machine's load falls on both alike), and the ratio of their median times. Both give
the same loss and gradients (tests/test_model.py); only the time differs. The scored
places are the answer's: about a third of a reverse row, nine tenths of a detailed one.

    python benchmarks/scored.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import save

from arithlab.batches import IGNORE, AnswerBatches
from arithlab.config import PRESETS, load_config
from arithlab.data import build_splits
from arithlab.devices import autocast_for
from arithlab.formats import get_format
from arithlab.model import GPT, GPTConfig
from arithlab.tokenizer import CharTokenizer
from arithlab.trainer import train_step

BATCH = {"plain": 128, "reverse": 128, "simplified": 32, "detailed": 16}  # the sweep's


def step_times(fmt_name: str, rounds: int, steps: int) -> dict:
    problems = build_splits(load_config(None, ["data.n_val=1", "data.n_test=1"]).data).train
    tokenizer = CharTokenizer()
    batches = AnswerBatches(problems, get_format(fmt_name), tokenizer)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=batches.longest, **PRESETS["small"]))
    optimizer = model.optimizer(1e-3, 0.1, (0.9, 0.99))
    generator = torch.Generator().manual_seed(0)

    def whole_rows(x, offsets=None, scored=None):  # every place through every block
        return model(x, offsets=offsets)[scored]

    def one(wrapped) -> float:
        x, y, _ = batches.sample(BATCH[fmt_name], generator)
        started = time.perf_counter()
        train_step(wrapped, model, optimizer, x, y, None, int((y != IGNORE).sum()), 1.0, autocast_for("cpu"))
        return time.perf_counter() - started

    variants = {"scored": model, "whole": whole_rows}
    for wrapped in variants.values():  # warm-up
        one(wrapped)
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, wrapped in variants.items():
            times[name] += [one(wrapped) for _ in range(steps)]
    _, y, real = batches.sample(256, generator)
    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    return {
        "format": fmt_name,
        "batch_size": BATCH[fmt_name],
        "scored_fraction": round(int((y != IGNORE).sum()) / real, 3),  # of the rows' tokens
        "scored_ms": round(ms["scored"], 2),
        "whole_ms": round(ms["whole"], 2),
        "speedup": round(ms["whole"] / ms["scored"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 steps per variant instead of 6 of 10")
    args = parser.parse_args()
    rounds, steps = (2, 5) if args.quick else (6, 10)
    rows = []
    for fmt_name in BATCH:
        row = step_times(fmt_name, rounds, steps)
        rows.append(row)
        print(
            f"{fmt_name:>10} batch {row['batch_size']:>3}: scored places {row['scored_ms']:>7} ms/step, whole rows "
            f"{row['whole_ms']:>7} ms/step, speedup {row['speedup']:.2f}",
            flush=True,
        )
    save("scored", {"benchmark": "scored", "threads": torch.get_num_threads(), "rows": rows}, args.quick)


if __name__ == "__main__":
    main()
