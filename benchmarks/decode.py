"""Benchmark: batched greedy decoding with the KV cache against full recomputation.

For 3-digit reverse addition (short answers) and detailed-scratchpad addition (answers of
~260 characters), decode the same problems both ways with the same model, check that the
outputs are identical, and print problems/s and the ratio. With --run, a trained run's
model is used; otherwise a freshly initialized one of the given preset (decoding then runs
to each problem's full budget, the worst case for both).

    python benchmarks/decode.py [--run runs/quickstart] [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import save

from arithlab import build, rundir
from arithlab.config import PRESETS, load_config
from arithlab.data import build_splits
from arithlab.evaluator import generate_answers
from arithlab.formats import get_format
from arithlab.model import GPT, GPTConfig
from arithlab.tasks import Problem
from arithlab.tokenizer import CharTokenizer


def _model(args, block_size: int) -> GPT:
    if args.run:
        return build.load_run_model(args.run, rundir.load_run_config(args.run), "cpu")[0]
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=CharTokenizer().vocab_size, block_size=block_size, **PRESETS[args.preset])
    return GPT(config).eval()


def measure(model: GPT, fmt_name: str, n: int, batch_size: int) -> dict:
    cfg = load_config(None, [f"data.format={fmt_name}", "data.n_train=200", "data.n_val=1", f"data.n_test={n}"])
    problems = build_splits(cfg.data).test
    fmt, tokenizer = get_format(fmt_name), CharTokenizer()
    timings, outputs = {}, {}
    for use_cache in (True, False):
        started = time.perf_counter()
        outputs[use_cache] = generate_answers(model, tokenizer, fmt, problems, batch_size, use_cache=use_cache)
        timings[use_cache] = time.perf_counter() - started
    return {
        "format": fmt_name,
        "problems": n,
        "batch_size": batch_size,
        "kv_cache_problems_per_s": round(n / timings[True], 1),
        "recompute_problems_per_s": round(n / timings[False], 1),
        "speedup": round(timings[False] / timings[True], 2),
        "identical_outputs": outputs[True] == outputs[False],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a trained run whose model to use (must fit the scratchpad)")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--quick", action="store_true", help="a tenth of the problems")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    # Room for the longest 3-digit detailed scratchpad (999+999) and its decoding slack.
    longest = len("\n" + get_format("detailed").render(Problem("+", 999, 999))) + 16
    model = _model(args, block_size=longest)
    rows = [measure(model, "reverse", 10_000 // scale, 1000), measure(model, "detailed", 1_000 // scale, 250)]
    for row in rows:
        print(
            f"{row['format']:>9}: {row['problems']} problems, KV cache {row['kv_cache_problems_per_s']}/s, "
            f"recompute {row['recompute_problems_per_s']}/s, identical outputs: {row['identical_outputs']}"
        )
        print(f"speedup: {row['speedup']:.2f}  (KV cache over full recomputation, {row['format']})")
    result = {
        "benchmark": "decode",
        "model": str(args.run) if args.run else f"{args.preset} (random init)",
        "rows": rows,
    }
    save("decode", result, args.quick)


if __name__ == "__main__":
    main()
