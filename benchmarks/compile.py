"""Benchmark: torch.compile on against off, per model size (answer objective).

Times the same training steps with and without `torch.compile` (dynamic shapes: answer
batches vary in width) after a warm-up that absorbs the compilation, and reports the
compilation time beside the speedup. Set `train.compile: true` where it wins.

    python benchmarks/compile.py [--quick]
"""

from __future__ import annotations

import argparse

from common import save, time_steps

SIZES = [("small", 256), ("nanogpt", 64)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 timed steps instead of 20")
    args = parser.parse_args()
    steps = 5 if args.quick else 20
    rows = []
    for preset, batch in SIZES:
        eager = time_steps(preset, "answer", batch, steps)
        compiled = time_steps(preset, "answer", batch, steps, compile=True)
        ratio = compiled["tokens_per_s"] / eager["tokens_per_s"]
        rows.append({"preset": preset, "eager": eager, "compiled": compiled, "speedup": round(ratio, 2)})
        print(
            f"{preset:>8}: eager {eager['step_ms']} ms/step, compiled {compiled['step_ms']} ms/step "
            f"(compilation and warm-up {compiled['warmup_s']} s)"
        )
        print(f"speedup: {ratio:.2f}  (torch.compile over eager, {preset}, training steps)", flush=True)
    save("compile", {"benchmark": "compile", "rows": rows}, args.quick)


if __name__ == "__main__":
    main()
